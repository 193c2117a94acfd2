package tracing

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestWithoutAnEndpointNothingIsRecorded(t *testing.T) {
	for _, m := range []map[string]string{{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"},
		{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"}} {
		tp, _, err := Setup(context.Background(), "t", env(m))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tp.(noop.TracerProvider); !ok {
			t.Fatalf("%v: want the no-op provider, got %T", m, tp)
		}
	}
	if _, _, err := Setup(context.Background(), "t", env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})); err == nil {
		t.Fatal("an unknown protocol must be refused")
	}
	tp, shutdown, err := Setup(context.Background(), "t", env(map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.(*sdktrace.TracerProvider); !ok {
		t.Fatalf("grpc: %T", tp)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = shutdown(ctx)
}

// With an endpoint, spans go there over OTLP/HTTP (protobuf) by default.
func TestSpansAreExportedOverOTLPHTTP(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path+" "+r.Header.Get("Content-Type"))
		mu.Unlock()
		if len(b) == 0 {
			t.Error("an empty export")
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer sink.Close()
	tp, shutdown, err := Setup(context.Background(), "t", env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL}))
	if err != nil {
		t.Fatal(err)
	}
	_, span := tp.Tracer(Scope).Start(context.Background(), "a span")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) == 0 || paths[0] != "/v1/traces application/x-protobuf" {
		t.Fatalf("exports: %v", paths)
	}
}

func TestTheContextTravelsInLowerCaseHeaders(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	defer span.End()
	h := nats.Header{}
	Inject(ctx, h)
	if len(h["traceparent"]) != 1 {
		t.Fatalf("headers: %v", h)
	}
	if got := TraceID(Extract(context.Background(), h)); got != span.SpanContext().TraceID().String() {
		t.Fatalf("extracted %q", got)
	}
	if TraceID(Extract(context.Background(), nats.Header{})) != "" || TraceID(Extract(context.Background(), nil)) != "" {
		t.Fatal("no header, no trace")
	}
}

// The SDK takes the sampler from OTEL_TRACES_SAMPLER.
func TestTheSamplerVariableIsHonoured(t *testing.T) {
	t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
	tp, shutdown, err := Setup(context.Background(), "t", env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	if _, span := tp.Tracer(Scope).Start(context.Background(), "s"); span.IsRecording() {
		t.Fatal("always_off must record nothing")
	}
	t.Setenv("OTEL_TRACES_SAMPLER", "always_on")
	tp2, shutdown2, _ := Setup(context.Background(), "t", env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}))
	defer func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = shutdown2(ctx)
	}()
	if _, span := tp2.Tracer(Scope).Start(context.Background(), "s"); !span.IsRecording() {
		t.Fatal("always_on must record")
	}
}
