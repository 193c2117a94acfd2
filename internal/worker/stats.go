package worker

import (
	"runtime/debug"
	"sort"
	"time"

	"github.com/mpaas-push/pushworker/internal/metrics"
)

// WorkerStats is what a worker says of itself on its stats endpoint: the
// console's and `nats micro stats pushworker`'s view of the fleet. It holds
// no setting, secret, target or template value.
type WorkerStats struct {
	Worker  string    `json:"worker"` // host:pid
	ID      string    `json:"id"`     // the NATS service instance
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Ready   bool      `json:"ready"`
	Paused  []Pause   `json:"paused"` // why it is not ready; empty when ready
	metrics.Live
	Campaigns []string `json:"campaigns"` // campaigns of the jobs in hand
}

// Pause is one reason a worker waits.
type Pause struct {
	Cause string `json:"cause"` // redis, nats, streams, mpaas-credentials, mpaas-unreachable
	Error string `json:"error"` // what it last saw
}

// Stats is the worker's state now.
func (s *Worker) Stats() WorkerStats {
	id, _ := s.serviceID.Load().(string)
	st := WorkerStats{Worker: s.worker, ID: id, Version: s.version,
		Started: s.started.UTC(), Live: s.metrics.Live(), Paused: []Pause{}}
	for cause, err := range s.gate.Reasons() {
		st.Paused = append(st.Paused, Pause{Cause: string(cause), Error: err})
	}
	sort.Slice(st.Paused, func(i, j int) bool { return st.Paused[i].Cause < st.Paused[j].Cause })
	st.Ready = len(st.Paused) == 0
	st.Campaigns = []string{}
	if s.pipe != nil {
		st.Campaigns = s.pipe.Campaigns()
	}
	return st
}

// version is the module's version, or the commit the binary was built from.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			if v == "" || v == "(devel)" {
				v = s.Value[:12]
			} else {
				v += " (" + s.Value[:12] + ")"
			}
		}
	}
	if v == "" {
		return "(devel)"
	}
	return v
}
