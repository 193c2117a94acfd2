package worker

import (
	"bufio"
	"bytes"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/mpaas-push/pushworker/internal/config"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Info lines wait in the buffer at most about logFlushEvery; a warning writes
// them out at once, itself included; stop writes out the rest.
func TestLogBuffer(t *testing.T) {
	var out lockedBuf
	log, stop, err := newLogger(&config.Worker{LogLevel: zapcore.InfoLevel, LogFormat: "json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("job done")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "job done") {
		if time.Now().After(deadline) {
			t.Fatal("an info line was never written")
		}
		time.Sleep(10 * time.Millisecond)
	}
	log.Info("before the warning")
	log.With(zap.String("job", "j1")).Warn("redis unavailable") // a logger with fields flushes too
	if s := out.String(); !strings.Contains(s, "before the warning") || !strings.Contains(s, "redis unavailable") {
		t.Fatalf("a warning must write out what waits, and itself: %q", s)
	}
	log.Info("last line")
	stop()
	if !strings.Contains(out.String(), "last line") {
		t.Fatal("stop must write out what waits")
	}
}

// The worker's standard output is a pipe under a supervisor or in a container:
// a warning flushes the buffer into it without an error (fsync of a pipe fails
// with EINVAL, and zap used to print "write error: sync /dev/stdout" for it).
func TestLogWarningToAPipe(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	log, stop, err := newLogger(&config.Worker{LogLevel: zapcore.InfoLevel, LogFormat: "json"}, w)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := log.Core().Write(zapcore.Entry{Level: zapcore.WarnLevel, Message: "paused: waiting for redis"}, nil); err != nil {
		t.Fatalf("a warning written to a pipe: %v", err)
	}
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil || !strings.Contains(line, "paused: waiting for redis") {
		t.Fatalf("the pipe got %q (%v)", line, err)
	}
}
