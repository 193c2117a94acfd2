package producer_test

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/producer"
)

// A job published under a span carries the W3C trace context in its
// traceparent header, and its result the trace id; one published without a
// trace carries neither header nor, with no tracing, a trace id.
func TestPublishCarriesTheTraceContext(t *testing.T) {
	h := teststack.New(t, teststack.Setup{})
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	p, err := producer.New(h.NC, producer.WithTopology(h.Topo), producer.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	h.StartWorker()
	sub, err := h.NC.SubscribeSync(h.Topo.EventsSubject("orders")) // sees what the job stream stores
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx, span := tp.Tracer("test").Start(context.Background(), "checkout")
	j := orderPaid()
	j.JobID = "traced-publish"
	if err := p.Publish(ctx, producer.Events("orders"), j); err != nil {
		t.Fatal(err)
	}
	span.End()
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tp0 := m.Header.Get("traceparent")
	if want := "00-" + span.SpanContext().TraceID().String() + "-"; !strings.HasPrefix(tp0, want) {
		t.Fatalf("traceparent %q, want %s…", tp0, want)
	}
	if r := h.Result(10 * time.Second); r.TraceID != span.SpanContext().TraceID().String() || r.Status != job.StatusSucceeded {
		t.Fatalf("result %+v, want trace %s", r, span.SpanContext().TraceID())
	}
	if len(exp.GetSpans()) == 0 {
		t.Fatal("the publish span was not recorded")
	}

	plain, err := producer.New(h.NC, producer.WithTopology(h.Topo)) // OpenTelemetry's global provider: no-op here
	if err != nil {
		t.Fatal(err)
	}
	j2 := orderPaid()
	j2.JobID = "untraced-publish"
	if err := plain.Publish(context.Background(), producer.Events("orders"), j2); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(5 * time.Second); err != nil || m.Header.Get("traceparent") != "" {
		t.Fatalf("a job published without a trace has no traceparent: %v %v", err, m)
	}
	if r := h.Result(10 * time.Second); r.JobID != "untraced-publish" || r.TraceID != "" {
		t.Fatalf("a job without a trace, with tracing off: %+v", r)
	}
}
