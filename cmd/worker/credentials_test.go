package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/job"
)

// A worker of two AccessKeys from MPAAS_CREDENTIALS_FILE, one secret in a
// file and one in a variable, with debug logging and a key mPaaS refuses: its
// log and endpoints name each credential by its id's first characters and
// hold neither secret nor whole id; a file that holds a secret stops the
// worker at start naming the field, without quoting it.
func TestCredentialsFileSecretsReachNoOutput(t *testing.T) {
	t.Parallel()
	const (
		idA, secretA = "LTAI5tAlphaKey0001", "SECRET-A-0cc175b9c0f1"
		idB, secretB = "LTAI5tBravoKey0002", "SECRET-B-92eb5ffee6ae"
	)
	ns := testenv.NATS(t)
	rdb := testenv.Redis(t)
	prefix := testenv.Prefix(t, rdb)
	sim := mpaassim.New(mpaassim.Config{Keys: map[string]string{idA: secretA, idB: "not-" + secretB}, AcceptAnyTemplate: true})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte(secretA), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "credentials.yaml")
	write := func(body string) {
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("credentials:\n  - {accessKeyId: %s, secretFile: %s, appIds: [app-a], rateLimit: 50}\n  - {accessKeyId: %s, secretEnv: SK_B, appIds: [app-b], rateLimit: 50}\n",
		idA, filepath.Join(dir, "a"), idB))
	env := map[string]string{
		"NATS_URL": ns.ClientURL(), "REDIS_URL": "redis://" + testenv.RedisAddr(), "PUSH_REDIS_PREFIX": prefix,
		"MPAAS_ENDPOINT": srv.URL, "MPAAS_CREDENTIALS_FILE": file, "SK_B": secretB, "PUSH_LOG_LEVEL": "debug",
		"PUSH_LOG_FORMAT": "json", "PUSH_HTTP_ADDR": "127.0.0.1:0", "PUSH_SHUTDOWN_GRACE": "3s",
	}
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) string { return env[k] }, out, out) }()
	addr := waitFor(t, out, httpAddrRE, 15*time.Second)[1]
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	publish := func(app string) {
		j := &job.Job{JobID: "cred-" + app, TaskName: "t", AppID: app, WorkspaceID: "w", DeliveryType: 3, ExpiredSeconds: 60,
			TemplateName: "t", TargetMsgkey: job.Targets{{Target: "u-" + app, MsgKey: "k"}}}
		body, _ := j.Encode()
		if err := nc.Publish("push.jobs.cred", body); err != nil {
			t.Fatal(err)
		}
	}
	// A's push goes out with A's key; then B's key is refused, which pauses the
	// worker and says so.
	publish("app-a")
	deadline := time.Now().Add(15 * time.Second)
	for sim.Delivered("app-a", "w", "u-app-a", "k") != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("app-a's push never went out with A's key:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	publish("app-b")
	waitFor(t, out, regexp.MustCompile(`paused: waiting for mpaas-credentials`), 15*time.Second)
	var bodies []string
	for _, path := range []string{"/metrics", "/readyz", "/healthz"} {
		_, body := get(t, "http://"+addr+path)
		bodies = append(bodies, body)
	}
	cancel()
	if err := <-done; err != nil {
		bodies = append(bodies, err.Error())
	}
	// A file that holds a secret: refused at start, naming the field and not the secret.
	write(fmt.Sprintf("credentials:\n  - {accessKeyId: %s, accessKeySecret: %s, appIds: [app-a], rateLimit: 50}\n", idA, secretA))
	err = run(context.Background(), nil, func(k string) string { return env[k] }, out, out)
	if err == nil || !strings.Contains(err.Error(), "accessKeySecret") || !strings.Contains(err.Error(), "must not hold a secret") {
		t.Fatalf("a file holding a secret: %v", err)
	}
	bodies = append(bodies, err.Error(), out.String())
	all := strings.Join(bodies, "\n")
	for _, s := range []string{secretA, secretB, idA, idB} {
		if i := strings.Index(all, s); i >= 0 {
			t.Fatalf("%q reached an output: …%s…", s, all[max(0, i-200):min(len(all), i+50)])
		}
	}
	for _, want := range []string{`credential="LTAI5tAl…"`, `credential="LTAI5tBr…"`, `"credential":"LTAI5tBr…"`, "SignatureDoesNotMatch"} {
		if !strings.Contains(all, want) {
			t.Errorf("the run lacks %q: it did not exercise what it checks", want)
		}
	}
}
