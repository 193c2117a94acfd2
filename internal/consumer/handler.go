package consumer

import (
	"context"
	"time"

	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
)

// Handler is the processing side: it runs one delivery of one job to an
// outcome and knows nothing of JetStream. The queue calls it once per delivery,
// from many goroutines at once.
type Handler interface {
	Handle(ctx context.Context, d Delivery) Outcome
}

// HandlerFunc makes a function a Handler.
type HandlerFunc func(ctx context.Context, d Delivery) Outcome

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, d Delivery) Outcome { return f(ctx, d) }

// Delivery is one delivery of a job message, as received.
type Delivery struct {
	Lane    string // topology.LaneDefault or topology.LaneBulk
	Subject string
	Data    []byte
	MsgID   string // the Nats-Msg-Id header, "" when absent
	// ParkedAs is the job id a job came back from parking with
	// (wire.ParkedAs), "" for any other job: its id stays the same and
	// it is no first delivery, though JetStream counts one.
	ParkedAs string
	Sequence uint64 // the message's stream sequence: the same on every delivery
	Number   int    // 1 for the first delivery
	Last     bool   // no delivery comes after this one (Number ≥ MaxDeliver)
}

// Action is what the queue does with the message once the handler is done.
type Action int

const (
	// Ack: the job is done and its result is stored; the message leaves the stream.
	Ack Action = iota
	// Term: the message can never succeed (an invalid job, or its last delivery
	// ended without a result); it leaves the stream without a redelivery.
	Term
	// Retry: hand the job back for a redelivery after Outcome.Delay.
	Retry
	// Release: hand the job back for a redelivery now (the worker is stopping).
	Release
	// Park: store the message as received on Outcome.ParkSubject (its campaign
	// is paused), then ack it; when the parked copy cannot be stored, Release.
	Park
	// Leave: do nothing with the message. A later delivery of it holds the job
	// (JetStream redelivered it while this one still ran) and answers for it; an
	// ack or a nak from this one would cut that delivery short.
	Leave
)

func (a Action) String() string {
	return [...]string{"ack", "term", "retry", "release", "park", "leave"}[a]
}

// DeadLetter is a job, or the part of it that failed, kept for inspection and replay.
type DeadLetter struct {
	JobID  string
	Body   []byte
	Reason string // ReasonRejected, ReasonFailed or ReasonStopped
	Error  string // the last error, one line
}

// Dead-letter reasons (wire owns them: the stored letter carries them).
const (
	ReasonRejected = wire.ReasonRejected // the job is invalid: the bytes as received
	ReasonFailed   = wire.ReasonFailed   // targets that failed for good: the job with only those
	ReasonStopped  = wire.ReasonStopped  // the last delivery ended without a result: the job as received
)

// Outcome is what became of one delivery. The queue stores DeadLetter first,
// then Result on ResultSubject, then waits for Pending, then does Action; an Ack
// whose result cannot be stored becomes a Release, so that the job is never
// acked without its result.
type Outcome struct {
	Result        *job.Result
	ResultSubject string
	DeadLetter    *DeadLetter
	Action        Action
	Delay         time.Duration // with Retry
	ParkSubject   string        // with Park
	JobID         string        // with Park: the job's id, kept in the parked copy
	// Pending, when set, waits for what the handler still does for this
	// delivery beside the result's publish (the sent marks of its last calls):
	// the message is acknowledged, or handed back, only after it returned.
	Pending func()
}
