package worker

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/metrics"
	"github.com/mpaas-push/pushworker/internal/pause"
)

// httpServer serves /metrics, /healthz and /readyz (and /debug/pprof when asked).
type httpServer struct {
	srv  *http.Server
	addr string
}

// openHTTP serves /metrics, /healthz and /readyz from here on: /readyz says
// why the worker is not ready while the rest of it starts.
func (s *Worker) openHTTP() error {
	addr := s.cfg.HTTPAddr
	if addr == "" {
		addr = map[bool]string{true: config.DefaultDevHTTPAddr, false: config.DefaultHTTPAddr}[s.cfg.Dev()]
	}
	h, err := serveHTTP(addr, s.metrics, s.gate, s.nc, s.cfg.Pprof)
	if err != nil {
		return fmt.Errorf("PUSH_HTTP_ADDR %s: %w", addr, err)
	}
	s.http = h
	s.closers = append(s.closers, h.close)
	return nil
}

func serveHTTP(addr string, m *metrics.Metrics, gate *pause.Gate, nc *nats.Conn, profiling bool) (*httpServer, error) {
	mux := http.NewServeMux()
	if profiling {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		causes := gate.Causes()
		if !nc.IsConnected() && !slices.Contains(causes, pause.CauseNATS) {
			causes = append(causes, pause.CauseNATS)
		}
		if len(causes) > 0 {
			names := make([]string, len(causes))
			for i, c := range causes {
				names[i] = string(c)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: waiting for %s\n", strings.Join(names, ", "))
			if why, ok := gate.Reasons()[pause.CauseRedisPermission]; ok {
				fmt.Fprintf(w, "redis-permission: the Redis user may not use the worker's keys (an ACL must allow ~<PUSH_REDIS_PREFIX>*): %s\n", why)
			}
			return
		}
		fmt.Fprintln(w, "ready")
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &httpServer{srv: srv, addr: l.Addr().String()}, nil
}

func (h *httpServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.srv.Shutdown(ctx)
}
