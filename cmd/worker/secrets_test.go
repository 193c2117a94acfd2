package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/job"
)

// A run with debug logging, refused credentials, failing calls, a rejected job and
// dead letters: no output of it holds the AccessKey secret, the NATS password or
// the Redis password.
func TestSecretsReachNoOutput(t *testing.T) {
	t.Parallel()
	const (
		akSecret  = "AKSECRET-d41d8cd98f00"
		natsPass  = "NATSPASS-8f14e45fceea"
		redisPass = "REDISPASS-c9f0f895fb98"
	)
	secrets := []string{akSecret, natsPass, redisPass}

	ns := testenv.NATSWith(t, &server.Options{Username: "pusher", Password: natsPass})
	own := testenv.StartRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: own.Addr()})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, "ACL", "SETUSER", "pusher", "on", ">"+redisPass, "~*", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	sim := mpaassim.New(mpaassim.Config{Keys: map[string]string{"ak-id": akSecret}, Templates: map[string]string{"ok": "hi"},
		Faults: mpaassim.Faults{RefuseSignatures: true}})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	natsURL := strings.Replace(ns.ClientURL(), "nats://", "nats://pusher:"+natsPass+"@", 1)
	env := map[string]string{
		"NATS_URL": natsURL, "REDIS_URL": fmt.Sprintf("redis://pusher:%s@%s", redisPass, own.Addr()),
		"PUSH_REDIS_PREFIX": "secrets-" + testenv.ID() + ":", "MPAAS_ENDPOINT": srv.URL,
		"MPAAS_AK_ENV": "ak-id", "MPAAS_SK_ENV": akSecret, "PUSH_LOG_LEVEL": "debug", "PUSH_LOG_FORMAT": "json",
		"PUSH_HTTP_ADDR": "127.0.0.1:0", "PUSH_MAX_DELIVER": "2", "PUSH_RETRY_DELAY": "100ms", "PUSH_ATTEMPTS": "2",
		"PUSH_SHUTDOWN_GRACE": "3s",
	}
	out := &syncBuffer{}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(runCtx, nil, func(k string) string { return env[k] }, out, out) }()
	addr := waitFor(t, out, httpAddrRE, 15*time.Second)[1]

	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	mk := func(id, tmpl string) []byte {
		j := &job.Job{JobID: id, TaskName: "t", AppID: "a", WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
			TemplateName: tmpl, TargetMsgkey: job.Targets{{Target: id + "-u", MsgKey: "k"}}}
		b, _ := j.Encode()
		return b
	}
	for _, m := range []struct {
		subject string
		body    []byte
	}{
		{"push.jobs.a", mk("s-ok", "ok")}, {"push.jobs.a", mk("s-unknown-template", "nope")},
		{"push.jobs.a", []byte(`{"jobId":"s-bad","appId":7}`)}, {"push.jobs.bulk.c", mk("s-bulk", "ok")},
	} {
		if _, err := js.Publish(ctx, m.subject, m.body); err != nil {
			t.Fatal(err)
		}
	}
	// Refused credentials: the worker pauses and says why.
	var bodies []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := get(t, "http://"+addr+"/readyz")
		if code == 503 && strings.Contains(body, "mpaas-credentials") {
			bodies = append(bodies, body)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused credentials never showed in /readyz: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	sim.SetFaults(mpaassim.Faults{Rate5xx: 1}) // the key works again; now every call fails with a 5xx
	waitFor(t, out, regexp.MustCompile(`"class":"transient"`), 15*time.Second)
	sim.SetFaults(mpaassim.Faults{}) // and mPaaS is well again
	results, err := js.OrderedConsumer(ctx, "PUSH_RESULTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	collect := func(c jetstream.Consumer, n int) {
		for range n {
			m, err := c.Next(jetstream.FetchMaxWait(20 * time.Second))
			if err != nil {
				t.Fatalf("waiting for messages: %v\n%s", err, out.String())
			}
			bodies = append(bodies, string(m.Data()), fmt.Sprint(m.Headers()))
		}
	}
	collect(results, 4)
	dlq, err := js.OrderedConsumer(ctx, "PUSH_DLQ", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	collect(dlq, 2) // the rejected job and the unknown template at least
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		_, body := get(t, "http://"+addr+path)
		bodies = append(bodies, body)
		// The endpoints expose no configuration either: no server address, no endpoint.
		for _, value := range []string{own.Addr(), strings.TrimPrefix(ns.ClientURL(), "nats://"), strings.TrimPrefix(srv.URL, "http://"), "ak-id"} {
			if strings.Contains(body, value) {
				t.Fatalf("%s exposes the configuration value %q", path, value)
			}
		}
	}
	cancel()
	if err := <-done; err != nil {
		bodies = append(bodies, err.Error())
	}
	bodies = append(bodies, out.String())
	all := strings.Join(bodies, "\n")
	for _, s := range secrets {
		if strings.Contains(all, s) {
			i := strings.Index(all, s)
			t.Fatalf("a secret leaked: …%s…", all[max(0, i-200):min(len(all), i+50)])
		}
	}
	// The run did what it had to: debug logging, the pause, the failures, the dead letters.
	for _, want := range []string{`"msg":"mPaaS call"`, "SignatureDoesNotMatch", `"class":"transient"`, "paused: waiting for mpaas-credentials",
		`"status":"rejected"`, "Pushworker-Reason"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the run lacks %q: it did not exercise what it checks", want)
		}
	}
	t.Logf("searched %d KB of output for 3 secrets", len(all)/1024)
}
