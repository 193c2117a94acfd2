package deploy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/topology"
)

// object is one Kubernetes object, read loosely.
type object map[string]any

func (o object) get(path ...any) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := cur.(map[string]any)
			cur = m[k]
		case int:
			s, _ := cur.([]any)
			if k >= len(s) {
				return nil
			}
			cur = s[k]
		}
	}
	return cur
}

func (o object) str(path ...any) string { s, _ := o.get(path...).(string); return s }

func load(t *testing.T) map[string]object {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	out := map[string]object{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(fh)
		for {
			var m map[string]any // nested maps then decode as map[string]any too
			if err := dec.Decode(&m); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			o := object(m)
			out[o.str("kind")+"/"+o.str("metadata", "name")] = o
		}
		fh.Close()
	}
	return out
}

// The Deployment's settings are ones the worker has, and the worker accepts
// them all (secrets from the files the manifest mounts); its probes, port,
// grace period and secret mounts are what the docs say.
func TestKubernetesManifests(t *testing.T) {
	objs := load(t)
	cm, dep, pdb, so := objs["ConfigMap/pushworker"], objs["Deployment/pushworker"], objs["PodDisruptionBudget/pushworker"], objs["ScaledObject/pushworker"]
	if cm == nil || dep == nil || pdb == nil || so == nil {
		t.Fatalf("want a ConfigMap, a Deployment, a PodDisruptionBudget and a ScaledObject named pushworker; have %v", keys(objs))
	}
	known := map[string]config.Setting{}
	for _, s := range (&config.Worker{}).Settings() {
		known[s.Env] = s
		if s.Secret {
			known[s.Env+"_FILE"] = s
		}
	}
	env := map[string]string{}
	data, _ := cm.get("data").(map[string]any)
	for k, v := range data {
		env[k], _ = v.(string)
	}
	container := object(dep.get("spec", "template", "spec", "containers", 0).(map[string]any))
	list, _ := container.get("env").([]any)
	for _, e := range list {
		e := object(e.(map[string]any))
		env[e.str("name")] = e.str("value")
	}
	mounts := map[string]bool{} // mount paths of secret volumes
	secretVolumes := map[string]bool{}
	vols, _ := dep.get("spec", "template", "spec", "volumes").([]any)
	for _, v := range vols {
		v := object(v.(map[string]any))
		if v.get("secret") != nil {
			secretVolumes[v.str("name")] = true
		}
	}
	vms, _ := container.get("volumeMounts").([]any)
	for _, m := range vms {
		m := object(m.(map[string]any))
		if secretVolumes[m.str("name")] {
			mounts[m.str("mountPath")] = true
		}
	}
	dir := t.TempDir()
	files := map[string]string{} // the manifest's secret paths → a file of this test's
	for name, value := range env {
		s, ok := known[name]
		if !ok {
			t.Errorf("%s is not a worker setting", name)
			continue
		}
		if s.Secret && !strings.HasSuffix(name, "_FILE") {
			t.Errorf("%s is a secret: mount it and set %s_FILE instead", name, name)
		}
		if strings.HasSuffix(name, "_FILE") {
			if !mounts[filepath.Dir(value)] {
				t.Errorf("%s=%s is not in a mounted secret volume (%v)", name, value, mounts)
			}
			local := filepath.Join(dir, filepath.Base(value))
			if err := os.WriteFile(local, []byte("not-a-real-secret"), 0o600); err != nil {
				t.Fatal(err)
			}
			files[name] = local
		}
	}
	getenv := func(k string) string {
		if f, ok := files[k]; ok {
			return f
		}
		return env[k]
	}
	w, err := config.ParseWorker(nil, getenv, "", io.Discard)
	if err != nil {
		t.Fatalf("the worker refuses the manifest's settings: %v", err)
	}
	if w.AccessSecret == "" || w.Redis.Password == "" {
		t.Fatal("the secrets were not read from the mounted files")
	}

	// Probes on the port the worker serves.
	_, port, err := net.SplitHostPort(env["PUSH_HTTP_ADDR"])
	if err != nil {
		t.Fatalf("PUSH_HTTP_ADDR=%q: %v", env["PUSH_HTTP_ADDR"], err)
	}
	if got := container.get("ports", 0, "containerPort"); strconv.Itoa(intOf(got)) != port {
		t.Errorf("containerPort %v, PUSH_HTTP_ADDR port %s", got, port)
	}
	if p := container.str("readinessProbe", "httpGet", "path"); p != "/readyz" {
		t.Errorf("readiness probe %q, want /readyz", p)
	}
	if p := container.str("livenessProbe", "httpGet", "path"); p != "/healthz" {
		t.Errorf("liveness probe %q, want /healthz (/readyz would restart workers during an outage)", p)
	}
	dockerfile, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^EXPOSE ` + port + `$`).Match(dockerfile) {
		t.Errorf("the Dockerfile does not EXPOSE %s", port)
	}
	// The pod outlives the worker's grace period.
	grace := time.Duration(intOf(dep.get("spec", "template", "spec", "terminationGracePeriodSeconds"))) * time.Second
	if grace < w.ShutdownGrace+10*time.Second {
		t.Errorf("terminationGracePeriodSeconds %v, want PUSH_SHUTDOWN_GRACE (%v) and 10 s more", grace, w.ShutdownGrace)
	}
	// The budget and the scaler point at the Deployment.
	labels, _ := dep.get("spec", "template", "metadata", "labels").(map[string]any)
	sel, _ := pdb.get("spec", "selector", "matchLabels").(map[string]any)
	for k, v := range sel {
		if labels[k] != v {
			t.Errorf("the PodDisruptionBudget selects %s=%v, the pods have %v", k, v, labels[k])
		}
	}
	if len(sel) == 0 {
		t.Error("the PodDisruptionBudget selects nothing")
	}
	if n := so.str("spec", "scaleTargetRef", "name"); n != dep.str("metadata", "name") {
		t.Errorf("the ScaledObject scales %q", n)
	}
	topo := topology.Default()
	consumers := map[string]bool{}
	triggers, _ := so.get("spec", "triggers").([]any)
	for _, tr := range triggers {
		tr := object(tr.(map[string]any))
		if tr.str("type") != "nats-jetstream" || tr.str("metadata", "stream") != topo.JobsStream {
			t.Errorf("trigger %v: want nats-jetstream on %s", tr, topo.JobsStream)
		}
		consumers[tr.str("metadata", "consumer")] = true
	}
	if !consumers[topo.Durable] || !consumers[topo.BulkDurable] || len(consumers) != 2 {
		t.Errorf("the scaler watches %v, want the two lanes' consumers %s and %s", consumers, topo.Durable, topo.BulkDurable)
	}
}

func intOf(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

func keys(m map[string]object) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
