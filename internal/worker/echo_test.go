package worker_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
)

// longest is the longest line the observed entries make as JSON log lines.
func longest(t *testing.T, logs *observer.ObservedLogs) (n int, line string) {
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, e := range logs.All() {
		b, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		if b.Len() > n {
			n, line = b.Len(), b.String()
		}
		b.Free()
	}
	return n, line
}

// A job whose unknown field's name is most of a megabyte still ends with a
// stored result and a stored dead letter, and no log line, header or result
// quotes more than a few hundred bytes of it.
func TestHugeFieldNamesAreEchoedClipped(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{})
	core, logs := observer.New(zap.DebugLevel)
	h.StartWorker(func(w *teststack.WorkerSetup) { w.Options.Logger = zap.New(core) })
	names := map[string]string{
		"ascii-900k": strings.Repeat("x", 900<<10),
		"nel-614k":   strings.Repeat("\u0085", 614*1024/2),
	}
	for id, name := range names {
		body := `{"jobId":"` + id + `","taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,` +
			`"targetMsgkey":{"u":"k"},"expiredSeconds":300,"templateName":"n","` + name + `":1}`
		h.Publish("push.jobs.huge", []byte(body), "")
	}
	got := h.ResultsFor([]string{"ascii-900k", "nel-614k"}, 30*time.Second)
	for id, r := range got {
		if r.Status != job.StatusRejected || len(r.Error) > job.MaxEchoLine || !strings.Contains(r.Error, "bytes)") {
			t.Fatalf("%s: want a rejected result with a clipped error, got %s (%d bytes)", id, r.Status, len(r.Error))
		}
	}
	for range names {
		dl := h.DeadLetter(10 * time.Second)
		hd := dl.Headers()
		id := hd.Get(wire.HeaderJobID)
		if _, ok := names[id]; !ok || hd.Get(wire.HeaderReason) != wire.ReasonRejected || len(hd.Get(wire.HeaderError)) > job.MaxEchoLine ||
			!bytes.Contains(dl.Data(), []byte(names[id])) {
			t.Fatalf("dead letter of %q: %d bytes, headers %d bytes of error", id, len(dl.Data()), len(hd.Get(wire.HeaderError)))
		}
	}
	if n, line := longest(t, logs); n >= 2048 || n == 0 {
		t.Fatalf("longest log line is %d bytes: %.300s", n, line)
	}
}
