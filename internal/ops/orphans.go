package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/topology"
)

// An Orphan is a message the job stream still holds although its lane's
// consumer has acknowledged it: its sequence is at or below the consumer's ack
// floor. A work-queue stream removes a message when it is acknowledged, so on a
// healthy server there are none; nats-server 2.9 can leave some behind when it
// crashes (the consumer's state survives, the removals do not). No worker will
// ever see them again: they only take space, and RemoveOrphans removes them.
type Orphan struct {
	Lane      string    `json:"lane"`
	Sequence  uint64    `json:"sequence"`
	Subject   string    `json:"subject"`
	JobID     string    `json:"jobId"`
	Published time.Time `json:"published"`
	Result    bool      `json:"resultKept"` // the results stream holds the job's result
}

// MaxOrphans caps one scan, so that a report on a huge stream stays short; a
// repair removes them in rounds.
const MaxOrphans = 10000

// orphanRecheck is how long Orphans waits before it checks again what it found:
// an acknowledgement reaches the stream a moment after the consumer.
const orphanRecheck = time.Second

// consumerInfo reads a lane's consumer.
func (o *Ops) consumerInfo(ctx context.Context, l topology.Lane) (*jetstream.ConsumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c, err := o.js.Consumer(ctx, o.topo.JobsStream, l.Consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s (has a worker started against this server?): %w", l.Consumer, o.topo.JobsStream, err)
	}
	return c.Info(ctx)
}

// ackFloors is each lane's ack floor (a stream sequence), by lane name.
func (o *Ops) ackFloors(ctx context.Context) (map[string]uint64, error) {
	floors := map[string]uint64{}
	for _, l := range o.topo.Lanes() {
		info, err := o.consumerInfo(ctx, l)
		if err != nil {
			return nil, err
		}
		floors[l.Name] = info.AckFloor.Stream
	}
	return floors, nil
}

func (o *Ops) jobStream(ctx context.Context) (jetstream.Stream, error) {
	return o.stream(ctx, o.topo.JobsStream)
}

// Orphans scans each lane's subjects from the job stream's first sequence up to
// the lane's ack floor (MaxOrphans at most), then checks again a second later
// that what it found is still there and still below the floor: acknowledgements
// reach the stream a moment after the consumer (on a cluster, through its own
// log), and a message in that moment is not an orphan.
func (o *Ops) Orphans(ctx context.Context) ([]Orphan, error) {
	stream, err := o.jobStream(ctx)
	if err != nil {
		return nil, err
	}
	found, err := o.scanOrphans(ctx, stream)
	if err != nil || len(found) == 0 {
		return found, err
	}
	select {
	case <-time.After(orphanRecheck):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	floors, err := o.ackFloors(ctx)
	if err != nil {
		return nil, err
	}
	var kept []Orphan
	for _, or := range found {
		if or.Sequence > floors[or.Lane] {
			continue
		}
		if _, err := stream.GetMsg(ctx, or.Sequence); errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		kept = append(kept, or)
	}
	return kept, nil
}

func (o *Ops) scanOrphans(ctx context.Context, stream jetstream.Stream) ([]Orphan, error) {
	floors, err := o.ackFloors(ctx)
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	results, err := o.js.Stream(ctx, o.topo.ResultsStream)
	if err != nil {
		results = nil // the orphans are still shown, without their results
	}
	var found []Orphan
	for _, l := range o.topo.Lanes() {
		for seq := info.State.FirstSeq; seq <= floors[l.Name] && len(found) < MaxOrphans; {
			m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(l.Filter))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s from sequence %d: %w", o.topo.JobsStream, seq, err)
			}
			if m.Sequence > floors[l.Name] {
				break
			}
			found = append(found, o.describe(ctx, results, l.Name, m))
			seq = m.Sequence + 1
		}
	}
	return found, nil
}

// describe names an orphan by its job and tells whether the job's result is
// kept in results (a sign that the job was done before the crash).
func (o *Ops) describe(ctx context.Context, results jetstream.Stream, lane string, m *jetstream.RawStreamMsg) Orphan {
	or := Orphan{Lane: lane, Sequence: m.Sequence, Subject: m.Subject, Published: m.Time}
	var j struct {
		JobID   string `json:"jobId"`
		ReplyTo string `json:"replyTo"`
	}
	if json.Unmarshal(m.Data, &j) == nil && j.JobID != "" {
		or.JobID = j.JobID
		subject := o.topo.ResultSubject(j.ReplyTo, j.JobID)
		if results != nil && o.topo.ValidReplyTo(subject) {
			_, err := results.GetLastMsgForSubject(ctx, subject)
			or.Result = err == nil
		}
	}
	return or
}

// RemoveOrphans removes found (as Orphans gave them) from the job stream and
// says how many it removed. It stops, with an error that says how many were
// removed, before a message above its lane's ack floor: that is no orphan.
func (o *Ops) RemoveOrphans(ctx context.Context, found []Orphan) (int, error) {
	if len(found) == 0 {
		return 0, nil
	}
	stream, err := o.jobStream(ctx)
	if err != nil {
		return 0, err
	}
	floors, err := o.ackFloors(ctx)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, or := range found {
		if or.Sequence > floors[or.Lane] { // Orphans never gives one: a floor does not go back
			return removed, fmt.Errorf("sequence %d is above the %s lane's ack floor %d now: stopped, %d removed", or.Sequence, or.Lane, floors[or.Lane], removed)
		}
		if err := stream.DeleteMsg(ctx, or.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return removed, fmt.Errorf("removing sequence %d: %w (%d removed)", or.Sequence, err, removed)
		}
		removed++
	}
	return removed, nil
}
