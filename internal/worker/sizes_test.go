package worker_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mpaas-push/pushworker/internal/testenv"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/internal/worker"
	"github.com/mpaas-push/pushworker/job"
)

// A target cap whose results could outgrow the server's max_payload is
// refused at start, naming the setting and the bound; the bound itself starts.
func TestMaxTargetsIsBoundedByMaxPayload(t *testing.T) {
	t.Parallel()
	ns := testenv.NATSWith(t, &server.Options{MaxPayload: 64 << 10})
	h := teststack.New(t, teststack.Setup{NATSURL: ns.ClientURL()})
	most := job.MaxTargetsFor(64 << 10)
	cfg := h.Config()
	cfg.MaxTargets = 40000
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := worker.New(ctx, cfg, worker.Options{NATS: h.NC, Topology: h.Topo})
	if err == nil {
		s.Close()
		t.Fatal("a worker with PUSH_MAX_TARGETS=40000 on a 64 KiB max_payload started")
	}
	if !strings.Contains(err.Error(), "PUSH_MAX_TARGETS") || !strings.Contains(err.Error(), strconv.Itoa(most)) {
		t.Fatalf("error %q names neither the setting nor the bound %d", err, most)
	}
	h.StartWorker(func(w *teststack.WorkerSetup) { w.Config.MaxTargets = most })
}
