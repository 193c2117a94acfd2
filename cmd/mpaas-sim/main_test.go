package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

func TestServesPushesAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	env := map[string]string{"MPAAS_AK_ENV": "id", "MPAAS_SK_ENV": "secret"}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0"}, func(k string) string { return env[k] }, pw, io.Discard)
	}()

	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	addr := strings.Fields(strings.SplitAfter(line, "http://")[1])[0]
	c, err := push.New(push.Config{Endpoint: "http://" + addr, AccessKeyID: "id", AccessKeySecret: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	j := &job.Job{TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60, TemplateName: "any",
		TargetMsgkey: job.Targets{{Target: "u", MsgKey: "k"}}}
	if out := c.Push(ctx, j, j.TargetMsgkey); out.Class != push.Success {
		t.Fatalf("push through mpaas-sim: %+v", out)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after its context ended", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("mpaas-sim did not stop")
	}
}

func TestHalfAKeyIsAnError(t *testing.T) {
	env := map[string]string{"MPAAS_AK_ENV": "id"}
	err := run(context.Background(), nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "MPAAS_SK_ENV") {
		t.Fatalf("want an error naming MPAAS_SK_ENV, got %v", err)
	}
}
