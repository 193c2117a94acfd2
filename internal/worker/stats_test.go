package worker_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/internal/worker"
)

// askAll sends one request to subject and gathers every answer for wait.
func askAll(t *testing.T, nc *nats.Conn, subject string, wait time.Duration) [][]byte {
	t.Helper()
	inbox := nats.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(subject, inbox, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for deadline := time.Now().Add(wait); ; {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			return out
		}
		out = append(out, m.Data)
	}
}

// Every worker answers the stats endpoint: its jobs in hand by lane, its calls
// in flight, ready or paused and why, the rate in force, its version and start;
// and `nats micro stats pushworker` ($SRV.STATS) carries the same.
func TestEveryWorkerReportsItsStats(t *testing.T) {
	t.Parallel()
	h := teststack.New(t, teststack.Setup{Faults: mpaassim.Faults{Latency: 2 * time.Second}})
	before := time.Now().Add(-time.Second)
	h.StartWorker()
	h.StartWorker()
	h.PublishJob(h.Topo.EventsSubject("stats"), teststack.NewJob("stats-1", "stats", 1))
	var answers []worker.WorkerStats
	deadline := time.Now().Add(10 * time.Second)
	busy := -1
	for busy < 0 && time.Now().Before(deadline) {
		answers = answers[:0]
		for _, body := range askAll(t, h.NC, h.Topo.WorkersStatsSubject(), 300*time.Millisecond) {
			var st worker.WorkerStats
			if err := json.Unmarshal(body, &st); err != nil {
				t.Fatalf("stats: %v: %s", err, body)
			}
			answers = append(answers, st)
		}
		for i, st := range answers {
			if st.JobsInHand["default"] == 1 && st.CallsInFlight == 1 {
				busy = i
			}
		}
	}
	if len(answers) != 2 || answers[0].ID == answers[1].ID || answers[0].ID == "" {
		t.Fatalf("want one answer from each of 2 workers: %+v", answers)
	}
	if busy < 0 {
		t.Fatalf("no worker reported the job in hand and its call in flight: %+v", answers)
	}
	for _, st := range answers {
		if !st.Ready || len(st.Paused) != 0 || st.Rate != float64(h.Config().RateLimit) || st.Version == "" ||
			st.Started.Before(before) || st.Started.After(time.Now()) || st.JobsInHand["bulk"] != 0 {
			t.Fatalf("stats of an idle ready worker: %+v", st)
		}
	}
	idle := answers[1-busy]
	if idle.CallsInFlight != 0 || idle.JobsInHand["default"] != 0 {
		t.Fatalf("the other worker holds nothing: %+v", idle)
	}

	type serviceStats struct {
		ID        string `json:"id"`
		Endpoints []struct {
			Name string             `json:"name"`
			Data worker.WorkerStats `json:"data"`
		} `json:"endpoints"`
	}
	var micro []serviceStats
	for _, body := range askAll(t, h.NC, "$SRV.STATS.pushworker", 300*time.Millisecond) {
		var one serviceStats
		if err := json.Unmarshal(body, &one); err != nil {
			t.Fatal(err)
		}
		micro = append(micro, one)
	}
	if len(micro) != 2 {
		t.Fatalf("$SRV.STATS.pushworker: %d answers, want 2", len(micro))
	}
	for _, m := range micro {
		found := false
		for _, e := range m.Endpoints {
			if e.Name == "stats" && e.Data.ID == m.ID && e.Data.Worker != "" {
				found = true
			}
		}
		if !found {
			t.Fatalf("the service stats must carry the worker's own: %+v", m)
		}
	}
}
