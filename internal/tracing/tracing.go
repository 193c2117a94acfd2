// Package tracing carries a push's trace from the producer to mPaaS: the W3C
// trace context in the NATS message's headers (traceparent, tracestate), and
// an OTLP exporter when the standard OTEL_* variables ask for one. Without
// them the provider is OpenTelemetry's no-op one: nothing is recorded, and a
// job still carries its producer's trace id into its result.
//
// It imports nothing of this project.
package tracing

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Scope names the project's tracers.
const Scope = "github.com/mpaas-push/pushworker"

// Carrier is a NATS message's headers as OpenTelemetry's carrier. The keys
// are the W3C names as written (traceparent, tracestate): NATS headers are
// case-sensitive.
type Carrier nats.Header

// Get is the first value of key.
func (c Carrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values.
func (c Carrier) Set(key, value string) { c[key] = []string{value} }

// Keys are the header names.
func (c Carrier) Keys() []string {
	out := make([]string, 0, len(c))
	for k := range c {
		out = append(out, k)
	}
	return out
}

// Propagator reads and writes the W3C trace context and baggage.
var Propagator propagation.TextMapPropagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Inject writes ctx's span context into h (nothing when ctx has none).
func Inject(ctx context.Context, h nats.Header) { Propagator.Inject(ctx, Carrier(h)) }

// Extract is ctx with the remote span context h carries, if any.
func Extract(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return Propagator.Extract(ctx, Carrier(h))
}

// TraceID is ctx's trace id in hex, or "" without a valid span context.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		return sc.TraceID().String()
	}
	return ""
}

// enabled reports whether the environment asks for traces to be exported: an
// OTLP endpoint is set, OTEL_TRACES_EXPORTER is not "none" and the SDK is not
// disabled.
func enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Exporter is where the environment asks traces to go, ok false when it asks
// for none: the protocol of OTEL_EXPORTER_OTLP_TRACES_PROTOCOL or
// OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf by default), and the endpoint as
// the specification says: the signal's own as given, or the general one, with
// /v1/traces for HTTP.
func Exporter(getenv func(string) string) (protocol, endpoint string, ok bool) {
	if !enabled(getenv) {
		return "", "", false
	}
	protocol = getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol == "" {
		protocol = "http/protobuf"
	}
	endpoint = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		endpoint = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
		if protocol == "http/protobuf" {
			endpoint = strings.TrimSuffix(endpoint, "/") + "/v1/traces"
		}
	}
	return protocol, endpoint, true
}

// Setup is the tracer provider the environment asks for, and its shutdown
// (which flushes what is batched). With an OTLP endpoint it exports where and
// as Exporter says, with the sampler of OTEL_TRACES_SAMPLER and the batching
// of OTEL_BSP_*, which the SDK reads; the exporters read the other
// OTEL_EXPORTER_OTLP_* settings (headers, TLS, timeout). Without one it is the
// no-op provider.
func Setup(ctx context.Context, service string, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	protocol, endpoint, ok := Exporter(getenv)
	if !ok {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	var (
		exp sdktrace.SpanExporter
		err error
	)
	// The endpoint is passed on, so that getenv is the whole truth.
	switch protocol {
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint))
	case "grpc":
		exp, err = otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(endpoint))
	default:
		return nil, nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want http/protobuf or grpc", protocol)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// service.name is the command's unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES say otherwise (WithFromEnv comes later and wins).
	res, err := resource.New(ctx, resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil {
		res = resource.Default()
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
