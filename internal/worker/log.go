package worker

import (
	"errors"
	"io"
	"os"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mpaas-push/pushworker/internal/config"
)

// openLog takes o.Logger, or makes the worker's logger from the configuration;
// Close flushes it.
func (s *Worker) openLog(o Options) (err error) {
	if s.log = o.Logger; s.log == nil {
		s.log, s.stopLog, err = newLogger(s.cfg, o.Log)
	}
	return err
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
