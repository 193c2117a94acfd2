package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/health"
	"github.com/mpaas-push/pushworker/internal/metrics"
)

// httpServer serves /metrics, /healthz and /readyz (and /debug/pprof when asked).
type httpServer struct {
	srv  *http.Server
	addr string
}

func serveHTTP(addr string, m *metrics.Metrics, gate *health.Gate, nc *nats.Conn, profiling bool) (*httpServer, error) {
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
		if !nc.IsConnected() && !slices.Contains(causes, health.CauseNATS) {
			causes = append(causes, health.CauseNATS)
		}
		if len(causes) > 0 {
			names := make([]string, len(causes))
			for i, c := range causes {
				names[i] = string(c)
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: waiting for %s\n", strings.Join(names, ", "))
			if why, ok := gate.Reasons()[health.CauseRedisPermission]; ok {
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

// logFlushEvery is how long an info line may wait in the log's buffer. Writing
// each line on its own cost the worker a write system call per job; warnings
// and errors are written at once, with whatever waits before them.
const logFlushEvery = 100 * time.Millisecond

// newLogger makes the worker's logger; stop flushes what is buffered and ends
// the buffer's flushing goroutine.
func newLogger(c *config.Worker, out io.Writer) (log *zap.Logger, stop func(), err error) {
	if out == nil {
		out = os.Stdout
	}
	format := c.LogFormat
	if format == "" {
		format = map[bool]string{true: "console", false: "json"}[c.Dev()]
	}
	var enc zapcore.Encoder
	if format == "json" {
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	}
	// Only the writes: flushing the buffer is what a warning needs, and an fsync
	// of a pipe (standard output under a supervisor) fails with EINVAL.
	ws := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(writeOnly{out}), Size: 256 << 10, FlushInterval: logFlushEvery}
	core := flushing{Core: zapcore.NewCore(enc, ws, c.LogLevel), ws: ws}
	return zap.New(core), func() { _ = ws.Stop() }, nil
}

// writeOnly hides a writer's Sync.
type writeOnly struct{ io.Writer }

// flushing writes the buffered lines out with every warning or error.
type flushing struct {
	zapcore.Core
	ws zapcore.WriteSyncer
}

func (c flushing) With(f []zapcore.Field) zapcore.Core { return flushing{c.Core.With(f), c.ws} }

func (c flushing) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c flushing) Write(e zapcore.Entry, f []zapcore.Field) error {
	err := c.Core.Write(e, f)
	if e.Level >= zapcore.WarnLevel {
		err = errors.Join(err, c.ws.Sync())
	}
	return err
}
