package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseWith parses a production worker whose AccessKeys come from a
// credentials file holding body.
func parseWith(t *testing.T, body string, env map[string]string, args ...string) (*Worker, error) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "credentials.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(body, "$DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sk-a"), []byte("secret-a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	all := map[string]string{"NATS_URL": "nats://127.0.0.1:4222", "REDIS_URL": "redis://127.0.0.1:6379",
		"MPAAS_CREDENTIALS_FILE": path, "SK_B": "secret-b"}
	for k, v := range env {
		all[k] = v
	}
	return ParseWorker(args, func(k string) string { return all[k] }, "", io.Discard)
}

const twoCredentials = `credentials:
  - accessKeyId: LTAI5tExampleA
    secretFile: $DIR/sk-a
    appIds: [ONEX570DA89211721, ONEX570DA89211722]
    rateLimit: 80
  - accessKeyId: LTAI5tExampleB
    secretEnv: SK_B
    appIds: [ONEX570DA89211799]
    rateLimit: 200
`

// The file's form of docs/configuration.md, in YAML and in JSON: each
// credential with its secret read from where it says, its apps and its rate.
func TestCredentialsFileIsRead(t *testing.T) {
	json := `{"credentials": [
	  {"accessKeyId": "LTAI5tExampleA", "secretFile": "$DIR/sk-a", "appIds": ["ONEX570DA89211721", "ONEX570DA89211722"], "rateLimit": 80},
	  {"accessKeyId": "LTAI5tExampleB", "secretEnv": "SK_B", "appIds": ["ONEX570DA89211799"], "rateLimit": 200}]}`
	for name, body := range map[string]string{"yaml": twoCredentials, "json": json} {
		t.Run(name, func(t *testing.T) {
			w, err := parseWith(t, body, nil)
			if err != nil {
				t.Fatal(err)
			}
			if w.Dev() || len(w.Credentials) != 2 || w.RateLimitSet {
				t.Fatalf("want production with two credentials and no overall cap: %+v", w.Credentials)
			}
			a, b := w.Credentials[0], w.Credentials[1]
			if a.AccessKeyID != "LTAI5tExampleA" || a.Secret != "secret-a" || a.RateLimit != 80 || len(a.AppIDs) != 2 {
				t.Errorf("credential A: %+v", a)
			}
			if b.AccessKeyID != "LTAI5tExampleB" || b.Secret != "secret-b" || b.RateLimit != 200 || b.AppIDs[0] != "ONEX570DA89211799" {
				t.Errorf("credential B: %+v", b)
			}
			// The two ids differ in their last character only: they show apart
			// by their place, never as the whole id.
			if a.Name() != "LTAI5tExample…#1" || b.Name() != "LTAI5tExample…#2" {
				t.Errorf("A and B show as %q and %q", a.Name(), b.Name())
			}
		})
	}
}

// PUSH_RATE_LIMIT, from the environment or a flag, caps the credentials
// together only when it is given, even at the default's value.
func TestRateLimitCapsOnlyWhenSet(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want bool
	}{
		{"unset", nil, nil, false},
		{"env", map[string]string{"PUSH_RATE_LIMIT": "100"}, nil, true},
		{"flag", nil, []string{"--rate-limit=300"}, true},
		{"flag apart", nil, []string{"-rate-limit", "300"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, err := parseWith(t, twoCredentials, c.env, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			if w.RateLimitSet != c.want {
				t.Fatalf("RateLimitSet %v, want %v", w.RateLimitSet, c.want)
			}
		})
	}
}

// A bad file stops the worker at start with an error naming the credential
// (by its AccessKey id's first characters, or its place) and the field, and
// never quoting a secret.
func TestBadCredentialsFilesAreRefused(t *testing.T) {
	one := func(fields string) string {
		return "credentials:\n  - accessKeyId: LTAI5tExampleA\n" + fields
	}
	ok := "    secretEnv: SK_B\n    appIds: [ONEX570DA89211721]\n    rateLimit: 10\n"
	for _, c := range []struct {
		name, body string
		env        map[string]string
		want       []string
	}{
		{"secret in the file", one(ok + "    accessKeySecret: the-very-secret\n"), nil, []string{"credentials[0] (LTAI5tE…)", "accessKeySecret", "must not hold a secret", "secretFile"}},
		{"secret under another name", one(ok + "    secret: the-very-secret\n"), nil, []string{"credentials[0]", "secret:", "must not hold a secret"}},
		{"unknown field", one(ok + "    region: cn-hangzhou\n"), nil, []string{"credentials[0] (LTAI5tE…)", `unknown field "region"`}},
		{"no accessKeyId", "credentials:\n  - secretEnv: SK_B\n    appIds: [A]\n    rateLimit: 1\n", nil, []string{"credentials[0]:", "accessKeyId: required"}},
		{"no secret", one("    appIds: [ONEX570DA89211721]\n    rateLimit: 10\n"), nil, []string{"LTAI5tE…", "secretFile or secretEnv: required"}},
		{"both secrets", one(ok + "    secretFile: /x\n"), nil, []string{"secretFile and secretEnv"}},
		{"empty secretEnv", one(ok), map[string]string{"SK_B": ""}, []string{"LTAI5tE…", "secretEnv SK_B: empty"}},
		{"missing secretFile", one("    secretFile: $DIR/none\n    appIds: [A]\n    rateLimit: 10\n"), nil, []string{"LTAI5tE…", "secretFile:"}},
		{"no apps", one("    secretEnv: SK_B\n    rateLimit: 10\n"), nil, []string{"LTAI5tE…", "appIds: want a list"}},
		{"zero rate", one("    secretEnv: SK_B\n    appIds: [A]\n    rateLimit: 0\n"), nil, []string{"LTAI5tE…", "rateLimit: want a whole number"}},
		{"fractional rate", one("    secretEnv: SK_B\n    appIds: [A]\n    rateLimit: 1.5\n"), nil, []string{"rateLimit: want a whole number"}},
		{"no rate", one("    secretEnv: SK_B\n    appIds: [A]\n"), nil, []string{"rateLimit: required"}},
		{"an app twice", twoCredentials + "  - accessKeyId: LTAI5tExampleC\n    secretEnv: SK_B\n    appIds: [ONEX570DA89211799]\n    rateLimit: 1\n", nil,
			[]string{"credentials[2] (LTAI5tE…)", "appIds", "ONEX570DA89211799", "served by"}},
		{"a key twice", twoCredentials + "  - accessKeyId: LTAI5tExampleA\n    secretEnv: SK_B\n    appIds: [X]\n    rateLimit: 1\n", nil, []string{"credentials[2]", "accessKeyId: listed twice"}},
		{"empty list", "credentials: []\n", nil, []string{"credentials: want a list"}},
		{"other top field", "credential: []\n", nil, []string{`unknown field "credential"`}},
		{"not yaml", "credentials: [\n", nil, []string{"not YAML or JSON"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseWith(t, c.body, c.env)
			if err == nil {
				t.Fatalf("want an error with %q", c.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "MPAAS_CREDENTIALS_FILE") {
				t.Errorf("error %q does not name MPAAS_CREDENTIALS_FILE", msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			for _, secret := range []string{"the-very-secret", "secret-a", "secret-b"} {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q quotes a secret", msg)
				}
			}
		})
	}
}

// The partial-settings rule with a file: NATS_URL, REDIS_URL and the file make
// production; the file beside MPAAS_AK_ENV or MPAAS_SK_ENV, or without
// NATS_URL and REDIS_URL, is an error that says what to fix.
func TestCredentialsFileInTheModeRule(t *testing.T) {
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"with MPAAS_AK_ENV", map[string]string{"MPAAS_AK_ENV": "ak"}, []string{"MPAAS_CREDENTIALS_FILE and MPAAS_AK_ENV are set", "unset it"}},
		{"with both keys", map[string]string{"MPAAS_AK_ENV": "ak", "MPAAS_SK_ENV": "sk"}, []string{"MPAAS_AK_ENV and MPAAS_SK_ENV", "unset them"}},
		{"without NATS and Redis", map[string]string{"NATS_URL": "", "REDIS_URL": ""}, []string{"MPAAS_CREDENTIALS_FILE is set but NATS_URL and REDIS_URL are not", "for dev mode"}},
		{"without Redis", map[string]string{"REDIS_URL": ""}, []string{"but REDIS_URL is not"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseWith(t, twoCredentials, c.env)
			if err == nil {
				t.Fatalf("want an error with %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Credentials show by their ids' first characters, never a whole id: more
// characters where two would show alike, their place where even that fails.
func TestCredentialNamesAreUniqueAndPartial(t *testing.T) {
	mk := func(ids ...string) []string {
		var cs []Credential
		for _, id := range ids {
			cs = append(cs, Credential{AccessKeyID: id})
		}
		label(cs)
		var out []string
		for _, c := range cs {
			out = append(out, c.Name())
		}
		return out
	}
	for _, c := range []struct{ ids, want []string }{
		{[]string{"LTAI5tAlphaKey0001", "LTAI5tBravoKey0002"}, []string{"LTAI5tAl…", "LTAI5tBr…"}},
		{[]string{"LTAI5tAAAAxxxxxxxxxx", "LTAI5tAAAAyyyyyyyyyy", "LTAI5tBBBB"}, []string{"LTAI5tAAAAx…", "LTAI5tAAAAy…", "LTAI5…"}},
		{[]string{"LTAI5tSameKeyA", "LTAI5tSameKeyB"}, []string{"LTAI5tSameKey…#1", "LTAI5tSameKey…#2"}},
		{[]string{"ak-id"}, []string{"ak…"}},
	} {
		if got := mk(c.ids...); strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("%v show as %v, want %v", c.ids, got, c.want)
		}
	}
}
