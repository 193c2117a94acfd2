package deploy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mpaas-push/pushworker/internal/teststack"
)

// exported is what a worker's /metrics holds: each metric family with its
// label names.
type exported map[string]map[string]bool

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? `)
var labelName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="`)

// scrape starts a worker, runs a job through it and reads its /metrics.
func scrape(t *testing.T) exported {
	t.Helper()
	h := teststack.New(t, teststack.Setup{})
	w := h.StartWorker()
	h.PublishJob(h.Topo.EventsSubject("monitoring"), teststack.NewJob("monitoring-1", "monitoring", 3))
	h.Result(10 * time.Second)
	resp, err := http.Get("http://" + w.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := exported{}
	for _, line := range strings.Split(string(body), "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		labels := out[m[1]]
		if labels == nil {
			labels = map[string]bool{}
			out[m[1]] = labels
		}
		for _, l := range labelName.FindAllStringSubmatch(m[3], -1) {
			labels[l[1]] = true
		}
	}
	return out
}

var (
	metricName = regexp.MustCompile(`\bpushworker_[a-z_]+\b`)
	selector   = regexp.MustCompile(`\{([^}]*)\}`)
	grouping   = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	// Labels every scraped series has (Prometheus adds them) or a function makes.
	addedLabels = map[string]bool{"instance": true, "job": true, "le": true}
)

// check reports each metric an expression names that the worker does not
// export, and each label it selects or groups by that none of its metrics has.
func (e exported) check(expr string) []string {
	var problems, names []string
	labels := map[string]bool{}
	for _, name := range metricName.FindAllString(expr, -1) {
		if _, ok := e[name]; !ok { // a histogram's samples are name_bucket, _sum and _count
			problems = append(problems, "metric "+name+" is not exported")
			continue
		}
		names = append(names, name)
		for l := range e[name] {
			labels[l] = true
		}
	}
	var used []string
	for _, m := range selector.FindAllStringSubmatch(expr, -1) {
		for _, l := range labelName.FindAllStringSubmatch(m[1], -1) {
			used = append(used, l[1])
		}
		for _, l := range regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=)`).FindAllStringSubmatch(m[1], -1) {
			used = append(used, l[1])
		}
	}
	for _, m := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "" {
				used = append(used, l)
			}
		}
	}
	for _, l := range used {
		if len(names) == 0 {
			break // no metric to have labels: reported above
		}
		if !labels[l] && !addedLabels[l] {
			problems = append(problems, "label "+l+" is on none of "+strings.Join(names, ", "))
		}
	}
	return problems
}

// expressions are the dashboard's queries and the alert rules', by where they are.
func expressions(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	raw, err := os.ReadFile("grafana/pushworker.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("grafana/pushworker.json: %v", err)
	}
	for _, p := range dash.Panels {
		for i, tg := range p.Targets {
			out["dashboard panel "+p.Title+" #"+string(rune('A'+i))] = tg.Expr
		}
	}
	raw, err = os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
				For   string `yaml:"for"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" {
				t.Fatalf("prometheus/alerts.yml: a rule without alert or expr: %+v", r)
			}
			out["alert "+r.Alert] = r.Expr
		}
	}
	return out
}

// The dashboard and the alerts name only metrics and labels a real worker
// exports, so that neither can drift from the code.
func TestDashboardAndAlertsNameRealMetrics(t *testing.T) {
	exprs := expressions(t)
	if len(exprs) < 15 {
		t.Fatalf("only %d expressions read", len(exprs))
	}
	got := scrape(t)
	var where []string
	for w := range exprs {
		where = append(where, w)
	}
	sort.Strings(where)
	for _, w := range where {
		for _, p := range got.check(exprs[w]) {
			t.Errorf("%s: %s\n\t%s", w, p, exprs[w])
		}
	}
	for _, alert := range []string{"PushWorkerPaused", "PushWorkerNoneReady", "PushWorkerThrottled", "PushWorkerDeadLettersRising",
		"PushWorkerBacklogGrowing", "PushWorkerResultsNotStored", "PushWorkerCredentialThrottled"} {
		if exprs["alert "+alert] == "" {
			t.Errorf("alert %s is missing", alert)
		}
	}
}

// The checker itself: a wrong metric or label name is caught.
func TestTheCheckCatchesWrongNames(t *testing.T) {
	e := exported{"pushworker_jobs_total": {"lane": true, "status": true}, "pushworker_mpaas_call_seconds_bucket": {"le": true}}
	if p := e.check(`sum by (status) (rate(pushworker_jobs_total[1m]))`); len(p) != 0 {
		t.Fatalf("a right expression: %v", p)
	}
	if p := e.check(`histogram_quantile(0.99, sum by (le) (rate(pushworker_mpaas_call_seconds_bucket[5m])))`); len(p) != 0 {
		t.Fatalf("a histogram: %v", p)
	}
	if p := e.check(`sum(rate(pushworker_job_total[1m]))`); len(p) != 1 || !strings.Contains(p[0], "pushworker_job_total") {
		t.Fatalf("a wrong metric: %v", p)
	}
	if p := e.check(`sum by (state) (rate(pushworker_jobs_total{lane="bulk",code=~"x"}[1m]))`); len(p) != 2 {
		t.Fatalf("two wrong labels: %v", p)
	}
}
