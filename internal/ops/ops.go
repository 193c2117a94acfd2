// Package ops is the operations library: campaign control and progress, recall,
// dead letters, orphans, a job's result by id, the workers' reports and a
// campaign's delivery figures (asked of a worker). The state lives in the
// system (the control bucket, the streams, the workers), so that any client
// gets the same outcome; cmd/enqueue is flags and printing over
// this package and the console turns its calls into JSON. It talks to NATS
// only: it never imports the pipeline or the mPaaS client, and needs no mPaaS
// credentials (the workers hold them).
package ops

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/topology"
)

// Ops works on one NATS connection and topology.
type Ops struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	topo topology.Topology
	// AskWait bounds how long a question to every worker waits for answers
	// after the last one came (workers answer within milliseconds).
	AskWait time.Duration
	// ResultScan bounds how many of the newest results Result reads for a
	// job whose result went to a replyTo of its own.
	ResultScan int

	mu      sync.Mutex
	workers int // how many workers answered the last question
}

// New makes an Ops over nc; topo is usually topology.Default().
func New(nc *nats.Conn, topo topology.Topology) (*Ops, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return &Ops{nc: nc, js: js, topo: topo.OrDefault(), AskWait: DefaultAskWait, ResultScan: DefaultResultScan}, nil
}

// DefaultAskWait is Ops.AskWait's default.
const DefaultAskWait = 300 * time.Millisecond

// Topology is the names Ops works with.
func (o *Ops) Topology() topology.Topology { return o.topo }

// stream looks up one of the topology's streams, which a worker creates.
func (o *Ops) stream(ctx context.Context, name string) (jetstream.Stream, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	s, err := o.js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s (has a worker started against this server?): %w", name, err)
	}
	return s, nil
}
