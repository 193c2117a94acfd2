package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// traceSink is an OTLP/HTTP receiver that takes every export: with --traces the
// workers export every span to it, so that the bench measures what tracing
// costs the worker, not a collector. It keeps the spans of up to keepSpans,
// so that the bench can tell where an event job's time went.
type traceSink struct {
	srv      *http.Server
	addr     string
	requests atomic.Int64
	bytes    atomic.Int64

	mu    sync.Mutex
	spans map[string][]span // by trace id (hex)
	kept  int
}

// keepSpans bounds what the sink remembers: a campaign traced whole makes
// millions of spans, and only the events' are read.
const keepSpans = 200_000

// span is what the sink keeps of one.
type span struct {
	name       string
	id, parent string
	start, end time.Time
}

func startTraceSink() (*traceSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &traceSink{addr: ln.Addr().String(), spans: map[string][]span{}}
	s.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		s.requests.Add(1)
		s.bytes.Add(int64(len(body)))
		s.keep(body, r.Header.Get("Content-Encoding") == "gzip")
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK) // an empty ExportTraceServiceResponse: all taken
	})}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// keep decodes an export and remembers its spans, up to keepSpans.
func (s *traceSink) keep(body []byte, gzipped bool) {
	if gzipped {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return
		}
		if body, err = io.ReadAll(io.LimitReader(zr, 256<<20)); err != nil {
			return
		}
	}
	var req collectortrace.ExportTraceServiceRequest
	if proto.Unmarshal(body, &req) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if s.kept >= keepSpans {
					return
				}
				s.kept++
				id := hex.EncodeToString(sp.GetTraceId())
				s.spans[id] = append(s.spans[id], span{name: sp.GetName(), id: hex.EncodeToString(sp.GetSpanId()),
					parent: hex.EncodeToString(sp.GetParentSpanId()),
					start:  time.Unix(0, int64(sp.GetStartTimeUnixNano())), end: time.Unix(0, int64(sp.GetEndTimeUnixNano()))})
			}
		}
	}
}

// trace is the spans of one trace, by start.
func (s *traceSink) trace(id string) []span {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]span(nil), s.spans[id]...)
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

func (s *traceSink) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// env points a worker's exporter at the sink and samples every trace.
func (s *traceSink) env() []string {
	return []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + s.addr, "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
		"OTEL_TRACES_SAMPLER=always_on"}
}

// step is one stretch of an event job's way, from its publish to its result
// reaching the bench.
type step struct {
	Step string  `json:"step"`
	Ms   float64 `json:"ms"`
}

// stepFigures are a stretch's p50 and p99 over the traced events.
type stepFigures struct {
	Step string  `json:"step"`
	P50  float64 `json:"p50ms"`
	P99  float64 `json:"p99ms"`
	Jobs int     `json:"jobs"` // the events that had it
}

// eventTrace is what the bench knows of an event job: when it published it,
// when its result arrived, and the result's trace.
type eventTrace struct {
	published, read time.Time
	traceID         string
}

// stepsOf cuts an event's way into stretches, in order: queued (its publish to
// the worker's "push job" span), then each span inside the job and the gap
// before it (where no span runs: the worker's own work, or a wait), then the
// result's way to the bench (the end of "publish result" to the read). nil
// when its trace is not there.
func stepsOf(e eventTrace, spans []span) []step {
	var root *span
	for i := range spans {
		if spans[i].name == "push job" {
			root = &spans[i]
			break
		}
	}
	if root == nil {
		return nil
	}
	ms := func(d time.Duration) float64 { return round(float64(d.Nanoseconds())/1e6, 3) }
	out := []step{{Step: "queued: publish → push job", Ms: ms(root.start.Sub(e.published))}}
	at := root.start
	for _, s := range spans {
		if s.id == root.id || s.start.Before(root.start) {
			continue
		}
		out = append(out, step{Step: "→ " + s.name, Ms: ms(s.start.Sub(at))}, step{Step: s.name, Ms: ms(s.end.Sub(s.start))})
		if s.end.After(at) {
			at = s.end
		}
	}
	return append(out, step{Step: "result: last span's end → read by the bench", Ms: ms(e.read.Sub(at))})
}

// eventSteps is the p50 and p99 of each stretch over the events whose traces
// the sink holds, and the stretches of one event: the one of median latency.
func eventSteps(sink *traceSink, evs []eventTrace) (steps []stepFigures, example []step) {
	byName := map[string][]float64{}
	var order []string
	type traced struct {
		total float64
		steps []step
	}
	var all []traced
	for _, e := range evs {
		st := stepsOf(e, sink.trace(e.traceID))
		if st == nil {
			continue
		}
		seen := map[string]bool{}
		for _, s := range st {
			if seen[s.Step] { // a stretch twice in one job: counted once, the first
				continue
			}
			seen[s.Step] = true
			if _, ok := byName[s.Step]; !ok {
				order = append(order, s.Step)
			}
			byName[s.Step] = append(byName[s.Step], s.Ms)
		}
		all = append(all, traced{float64(e.read.Sub(e.published)), st})
	}
	if len(all) == 0 {
		return nil, nil
	}
	for _, name := range order {
		v := byName[name]
		sort.Float64s(v)
		steps = append(steps, stepFigures{Step: name, P50: round(v[len(v)/2], 3), P99: round(v[min(len(v)-1, len(v)*99/100)], 3), Jobs: len(v)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].total < all[j].total })
	return steps, all[len(all)/2].steps
}
