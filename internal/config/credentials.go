package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxCredentialsFile is the largest credentials file the worker reads.
const MaxCredentialsFile = 1 << 20

// Credential is one AccessKey of a credentials file (MPAAS_CREDENTIALS_FILE):
// the apps it serves and its own rate limit, shared by every worker.
type Credential struct {
	AccessKeyID string
	Secret      string // read from SecretFrom; never logged, never in the file
	SecretFrom  string // "secretFile /path" or "secretEnv NAME", for errors
	label       string // how it shows (Name), unique in its file
	AppIDs      []string
	RateLimit   int // calls per second over every worker
}

// Name is how logs, metrics and pages show the credential: its AccessKey id's
// first characters, never the secret (LoadCredentials makes each name of a
// file unique).
func (c Credential) Name() string {
	if c.label != "" {
		return c.label
	}
	return KeyPrefix(c.AccessKeyID)
}

// KeyPrefix is how an AccessKey shows: its id's first 8 characters and an
// ellipsis; of a short id (a test's, or the emulator's), half of it, so that
// the whole id never shows.
func KeyPrefix(id string) string {
	r := []rune(id)
	return string(r[:min(8, len(r)/2)]) + "…"
}

// longer is id's first n characters and an ellipsis, never all of them.
func longer(id string, n int) string {
	r := []rune(id)
	return string(r[:max(0, min(n, len(r)-1))]) + "…"
}

// label names each credential by its id's first characters, more of them
// where two would show alike (never the whole id), and by its place in the
// file where even that does not tell them apart.
func label(creds []Credential) {
	alike := func() map[string]int {
		n := map[string]int{}
		for _, c := range creds {
			n[c.label]++
		}
		for k, v := range n {
			if v < 2 {
				delete(n, k)
			}
		}
		return n
	}
	for i := range creds {
		creds[i].label = KeyPrefix(creds[i].AccessKeyID)
	}
	for n := 9; n <= 128 && len(alike()) > 0; n++ {
		same := alike()
		for i := range creds {
			if same[creds[i].label] > 0 {
				creds[i].label = longer(creds[i].AccessKeyID, n)
			}
		}
	}
	same := alike()
	for i := range creds {
		if same[creds[i].label] > 0 {
			creds[i].label += fmt.Sprintf("#%d", i+1)
		}
	}
}

// credentialFields are the fields a credential may have; any other is refused,
// and one that looks like a secret is refused as one.
var credentialFields = map[string]bool{"accessKeyId": true, "secretFile": true, "secretEnv": true, "appIds": true, "rateLimit": true}

// LoadCredentials reads and checks a credentials file (YAML, or JSON, which
// YAML reads too). Each credential's secret comes from its secretFile or from
// the variable its secretEnv names, read with getenv. Errors name the file, the
// credential (by its AccessKey id's first characters, or its place) and the field.
func LoadCredentials(path string, getenv func(string) string) ([]Credential, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("MPAAS_CREDENTIALS_FILE %s: "+format, append([]any{path}, a...)...)
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("MPAAS_CREDENTIALS_FILE: %w", err)
	}
	defer fh.Close()
	var buf bytes.Buffer
	if n, err := buf.ReadFrom(io.LimitReader(fh, MaxCredentialsFile+1)); err != nil {
		return nil, fail("%v", err)
	} else if n > MaxCredentialsFile {
		return nil, fail("larger than %d bytes", MaxCredentialsFile)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(buf.Bytes(), &doc); err != nil {
		return nil, fail("not YAML or JSON: %v", clip(err.Error()))
	}
	for k := range doc {
		if k != "credentials" {
			return nil, fail("unknown field %q: the file holds one field, credentials", clip(k))
		}
	}
	list, ok := doc["credentials"].([]any)
	if !ok || len(list) == 0 {
		return nil, fail("credentials: want a list of at least one credential")
	}
	var out []Credential
	served := map[string]string{} // app id → the credential that serves it
	keys := map[string]bool{}
	for i, item := range list {
		c, err := readCredential(item, getenv)
		where := fmt.Sprintf("credentials[%d]", i)
		if c.AccessKeyID != "" {
			where += " (" + c.Name() + ")"
		}
		if err != nil {
			return nil, fail("%s: %v", where, err)
		}
		if keys[c.AccessKeyID] {
			return nil, fail("%s: accessKeyId: listed twice", where)
		}
		keys[c.AccessKeyID] = true
		for _, app := range c.AppIDs {
			if other, dup := served[app]; dup {
				return nil, fail("%s: appIds: %q is served by %s too: an app has one credential", where, clip(app), other)
			}
			served[app] = c.Name()
		}
		out = append(out, c)
	}
	label(out)
	return out, nil
}

// readCredential reads one entry of the list; its errors name the field.
func readCredential(item any, getenv func(string) string) (Credential, error) {
	m, ok := item.(map[string]any)
	if !ok {
		return Credential{}, errors.New("want an object with accessKeyId, secretFile or secretEnv, appIds and rateLimit")
	}
	var c Credential
	c.AccessKeyID, _ = m["accessKeyId"].(string)
	c.AccessKeyID = strings.TrimSpace(c.AccessKeyID)
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if credentialFields[k] {
			continue
		}
		if l := strings.ToLower(k); strings.Contains(l, "secret") || strings.Contains(l, "password") || l == "sk" {
			return c, fmt.Errorf("%s: the file must not hold a secret: put it in a file (secretFile) or an environment variable (secretEnv) and name that", clip(k))
		}
		return c, fmt.Errorf("unknown field %q (want accessKeyId, secretFile or secretEnv, appIds, rateLimit)", clip(k))
	}
	if c.AccessKeyID == "" {
		return c, errors.New("accessKeyId: required, a string")
	}
	if len(c.AccessKeyID) > 128 || strings.ContainsAny(c.AccessKeyID, " \t\r\n") {
		return c, errors.New("accessKeyId: want at most 128 characters without spaces")
	}
	file, _ := m["secretFile"].(string)
	env, _ := m["secretEnv"].(string)
	_, hasFile := m["secretFile"]
	_, hasEnv := m["secretEnv"]
	switch {
	case hasFile && hasEnv:
		return c, errors.New("secretFile and secretEnv: want one of them, not both")
	case hasFile:
		if file == "" {
			return c, errors.New("secretFile: want a file's path")
		}
		c.SecretFrom = "secretFile " + file
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("secretFile: %w", err)
		}
		c.Secret = strings.TrimSpace(string(b))
	case hasEnv:
		if env == "" || strings.ContainsAny(env, " =") {
			return c, errors.New("secretEnv: want an environment variable's name")
		}
		c.SecretFrom = "secretEnv " + env
		c.Secret = strings.TrimSpace(getenv(env))
	default:
		return c, errors.New("secretFile or secretEnv: required: where the secret is (never the secret itself)")
	}
	if c.Secret == "" {
		return c, fmt.Errorf("%s: empty: the secret is missing", c.SecretFrom)
	}
	apps, ok := m["appIds"].([]any)
	if !ok || len(apps) == 0 {
		return c, errors.New("appIds: want a list of at least one app id")
	}
	for _, a := range apps {
		s, ok := a.(string)
		if !ok || strings.TrimSpace(s) == "" || len(s) > 128 {
			return c, fmt.Errorf("appIds: %v: want an app id, a string of 1–128 characters", clip(fmt.Sprint(a)))
		}
		c.AppIDs = append(c.AppIDs, s)
	}
	rate, ok := m["rateLimit"].(int)
	if _, has := m["rateLimit"]; !has {
		return c, errors.New("rateLimit: required: calls per second, shared by every worker")
	}
	if !ok || rate < 1 {
		return c, errors.New("rateLimit: want a whole number of calls per second, at least 1")
	}
	c.RateLimit = rate
	return c, nil
}

// clip cuts what an error quotes of the file.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
