package worker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/producer"
)

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	out := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		out[kv.Key] = kv.Value
	}
	return out
}

// One job published under a business span: the producer's publish span, the
// worker's job span under it, and under that the claims, the limiter wait, the
// calls and the result's publish, with their attributes; the result carries the
// trace id. mPaaS fails the first call(s) with 5xx: each attempt is a call span,
// the failed ones with an error status.
func TestAJobContinuesItsProducersTrace(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{Rate5xx: 1}})
	h.StartWorker(func(w *teststack.WorkerSetup) { w.Options.Traces = tp })
	p, err := producer.New(h.NC, producer.WithTopology(h.Topo), producer.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}

	ctx, business := tp.Tracer("business").Start(context.Background(), "order paid")
	j := teststack.NewJob("traced-1", "traced", 3)
	if err := p.Publish(ctx, producer.Events("orders"), j); err != nil {
		t.Fatal(err)
	}
	business.End()
	for deadline := time.Now().Add(10 * time.Second); h.Sim.Stats().Calls == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no call")
		}
	}
	h.Sim.SetFaults(mpaassim.Faults{})
	r := h.Result(20 * time.Second)
	if r.Status != job.StatusSucceeded {
		t.Fatalf("result: %+v", r)
	}
	traceID := business.SpanContext().TraceID()
	if r.TraceID != traceID.String() {
		t.Fatalf("the result's traceId %q, want the producer's %s", r.TraceID, traceID)
	}

	byName := map[string][]tracetest.SpanStub{}
	for deadline := time.Now().Add(5 * time.Second); len(byName["push job"]) == 0; time.Sleep(20 * time.Millisecond) {
		clear(byName)
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == traceID {
				byName[s.Name] = append(byName[s.Name], s)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no job span in the trace: %v", byName)
		}
	}
	one := func(name string) tracetest.SpanStub {
		t.Helper()
		if len(byName[name]) != 1 {
			t.Fatalf("want one %q span, got %d (spans: %v)", name, len(byName[name]), keys(byName))
		}
		return byName[name][0]
	}
	publish := one("publish push.jobs.orders")
	if publish.Parent.SpanID() != business.SpanContext().SpanID() {
		t.Fatal("the publish span must be the business span's child")
	}
	jobSpan := one("push job")
	if jobSpan.Parent.SpanID() != publish.SpanContext.SpanID() || !jobSpan.Parent.IsRemote() {
		t.Fatal("the job span must continue the publish span, across NATS")
	}
	a := attrs(jobSpan)
	if a["pushworker.job_id"].AsString() != "traced-1" || a["pushworker.lane"].AsString() != "default" ||
		a["pushworker.targets"].AsInt64() != 3 || a["pushworker.deliveries"].AsInt64() != 1 || a["pushworker.status"].AsString() != "succeeded" {
		t.Fatalf("job span attributes: %v", jobSpan.Attributes)
	}
	for _, name := range []string{"claims", "publish result"} {
		if s := one(name); s.Parent.SpanID() != jobSpan.SpanContext.SpanID() {
			t.Fatalf("%s must be the job span's child", name)
		}
	}
	waits := byName["limiter wait"]
	if len(waits) != len(byName["mpaas PushTemplate"]) {
		t.Fatalf("one limiter wait per call: %d waits, %d calls", len(waits), len(byName["mpaas PushTemplate"]))
	}
	for _, w := range waits {
		if w.Parent.SpanID() != jobSpan.SpanContext.SpanID() || attrs(w)["pushworker.lane"].AsString() != "default" {
			t.Fatalf("limiter wait: %v", w.Attributes)
		}
	}
	calls := byName["mpaas PushTemplate"]
	if len(calls) < 2 {
		t.Fatalf("a retried call must show its attempts: %d call spans", len(calls))
	}
	for i, c := range calls {
		a := attrs(c)
		last := i == len(calls)-1
		if c.Parent.SpanID() != jobSpan.SpanContext.SpanID() || a["pushworker.attempt"].AsInt64() != int64(i+1) ||
			a["pushworker.targets"].AsInt64() != 3 || a["pushworker.action"].AsString() != "PushTemplate" {
			t.Fatalf("call %d: %v", i, c.Attributes)
		}
		if last != (c.Status.Code != codes.Error) {
			t.Fatalf("call %d of %d: status %v (only the last succeeds)", i+1, len(calls), c.Status)
		}
		if last && (a["pushworker.result_code"].AsString() != "OK" || a["pushworker.request_id"].AsString() == "") {
			t.Fatalf("the last call: %v", c.Attributes)
		}
	}
	for _, s := range exp.GetSpans() {
		for _, kv := range s.Attributes {
			if v := kv.Value.Emit(); strings.Contains(v, "traced-u0") || strings.Contains(v, "m-traced") || strings.Contains(v, "张三") ||
				strings.Contains(v, teststack.KeySecret) {
				t.Fatalf("span %s carries a target, a msgKey, a template value or the secret: %s=%s", s.Name, kv.Key, v)
			}
		}
	}
}

func keys(m map[string][]tracetest.SpanStub) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
