package consumer

import (
	"context"

	"github.com/mpaas-push/pushworker/topology"
)

// Mux is the queue's Handler when recall jobs share the job streams with push
// jobs: it routes each delivery by its subject alone, before any handler reads
// the job, an admin subject (topology.IsAdmin) to Recall and any other to Push.
type Mux struct {
	Topology topology.Topology // the worker's; zero: topology.Default()
	Push     Handler
	Recall   Handler
}

// Handle hands d to the handler its subject names.
func (m Mux) Handle(ctx context.Context, d Delivery) Outcome {
	if m.Topology.OrDefault().IsAdmin(d.Subject) {
		return m.Recall.Handle(ctx, d)
	}
	return m.Push.Handle(ctx, d)
}
