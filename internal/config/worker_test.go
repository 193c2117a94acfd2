package config

import (
	"io"
	"os"
	"strings"
	"testing"
)

// Dev mode is none of the four settings, production all four; every other mix
// is refused at start, naming what is set and what is missing.
func TestModeNeedsAllFourOrNone(t *testing.T) {
	names := []string{"NATS_URL", "REDIS_URL", "MPAAS_AK_ENV", "MPAAS_SK_ENV"}
	values := map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "REDIS_URL": "redis://127.0.0.1:6379", "MPAAS_AK_ENV": "ak", "MPAAS_SK_ENV": "sk"}
	for mask := range 1 << len(names) {
		env := map[string]string{}
		var set, unset []string
		for i, n := range names {
			if mask&(1<<i) != 0 {
				env[n] = values[n]
				set = append(set, n)
			} else {
				unset = append(unset, n)
			}
		}
		t.Run(strings.Join(append([]string{"set"}, set...), "+"), func(t *testing.T) {
			w, err := ParseWorker(nil, func(k string) string { return env[k] }, "", io.Discard)
			switch {
			case len(set) == 0:
				if err != nil || !w.Dev() {
					t.Fatalf("nothing set: want dev mode, got %v", err)
				}
			case len(unset) == 0:
				if err != nil || w.Dev() {
					t.Fatalf("all set: want production, got %v", err)
				}
			default:
				if err == nil {
					t.Fatalf("want an error naming %v as missing, got none", unset)
				}
				msg := err.Error()
				head, tail, ok := strings.Cut(msg, " but ")
				missing, _, ok2 := strings.Cut(tail, " not:")
				if !ok || !ok2 {
					t.Fatalf("error %q does not say what is set but what is not", msg)
				}
				for _, n := range set {
					if !strings.Contains(head, n) || strings.Contains(missing, n) {
						t.Errorf("error %q: %s is set", msg, n)
					}
				}
				for _, n := range unset {
					if !strings.Contains(missing, n) || strings.Contains(head, n) {
						t.Errorf("error %q: %s is missing", msg, n)
					}
				}
				if !strings.Contains(msg, "for production") || !strings.Contains(msg, "for dev mode") {
					t.Errorf("error %q does not say how to get either mode", msg)
				}
			}
		})
	}
}

// MPAAS_ENDPOINT alone keeps dev mode (a developer's own emulator); a bad one
// is an error in either mode.
func TestEndpointAloneIsDevMode(t *testing.T) {
	env := map[string]string{"MPAAS_ENDPOINT": "http://127.0.0.1:18080"}
	w, err := ParseWorker(nil, func(k string) string { return env[k] }, "", io.Discard)
	if err != nil || !w.Dev() || w.MPaaSEndpoint != env["MPAAS_ENDPOINT"] {
		t.Fatalf("want dev mode against %s, got %v", env["MPAAS_ENDPOINT"], err)
	}
	env["MPAAS_ENDPOINT"] = "ftp://x"
	if _, err := ParseWorker(nil, func(k string) string { return env[k] }, "", io.Discard); err == nil || !strings.Contains(err.Error(), "MPAAS_ENDPOINT") {
		t.Fatalf("want an error naming MPAAS_ENDPOINT, got %v", err)
	}
}

// docs/redis.md describes every key of the layout, under the prefix it writes P.
func TestRedisKeysAreTheDocumentedOnes(t *testing.T) {
	doc, err := os.ReadFile("../../docs/redis.md")
	if err != nil {
		t.Fatal(err)
	}
	k := (&Worker{RedisPrefix: "P"}).RedisKeys()
	for _, key := range []string{k.Dedupe, k.OldDedupe, k.Limit, k.Credential + "<AccessKey id>", k.Pace + "<campaign>", k.Totals + "<campaign>", k.Totals + "*index", k.Reports + "<campaign>"} {
		if !strings.Contains(string(doc), "`"+key) {
			t.Errorf("docs/redis.md does not describe %s", key)
		}
	}
}
