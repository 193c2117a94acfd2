package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/topology"
)

// An orphan is a message the job stream still holds although its lane's
// consumer has acknowledged it: its sequence is at or below the consumer's ack
// floor. A work-queue stream removes a message when it is acknowledged, so on a
// healthy server there are none; nats-server 2.9 can leave some behind when it
// crashes (the consumer's state survives, the removals do not). No worker will
// ever see them again: they only take space, and "enqueue repair" removes them.
type orphan struct {
	Lane      string    `json:"lane"`
	Sequence  uint64    `json:"sequence"`
	Subject   string    `json:"subject"`
	JobID     string    `json:"jobId"`
	Published time.Time `json:"published"`
	Result    bool      `json:"resultKept"` // the results stream holds the job's result
}

// maxOrphans caps one scan, so that a report on a huge stream stays short; a
// repair removes them in rounds.
const maxOrphans = 10000

// consumerInfo reads a lane's consumer.
func (e *env) consumerInfo(l topology.Lane) (*jetstream.ConsumerInfo, error) {
	c, err := e.js.Consumer(e.ctx, e.topo.JobsStream, l.Consumer)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s (has a worker started against this server?): %w", l.Consumer, e.topo.JobsStream, err)
	}
	return c.Info(e.ctx)
}

// ackFloors is each lane's ack floor (a stream sequence), by lane name.
func (e *env) ackFloors() (map[string]uint64, error) {
	floors := map[string]uint64{}
	for _, l := range e.topo.Lanes() {
		info, err := e.consumerInfo(l)
		if err != nil {
			return nil, err
		}
		floors[l.Name] = info.AckFloor.Stream
	}
	return floors, nil
}

// orphans scans each lane's subjects from the stream's first sequence up to the
// lane's ack floor, then checks again a second later that what it found is still
// there and still below the floor: acknowledgements reach the stream a moment
// after the consumer (on a cluster, through its own log), and a message in that
// moment is not an orphan.
func (e *env) orphans() ([]orphan, error) {
	stream, err := e.js.Stream(e.ctx, e.topo.JobsStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", e.topo.JobsStream, err)
	}
	found, err := e.scanOrphans(stream)
	if err != nil || len(found) == 0 {
		return found, err
	}
	select {
	case <-time.After(time.Second):
	case <-e.ctx.Done():
		return nil, e.ctx.Err()
	}
	floors, err := e.ackFloors()
	if err != nil {
		return nil, err
	}
	var kept []orphan
	for _, o := range found {
		if o.Sequence > floors[o.Lane] {
			continue
		}
		if _, err := stream.GetMsg(e.ctx, o.Sequence); errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		} else if err != nil {
			return nil, err
		}
		kept = append(kept, o)
	}
	return kept, nil
}

func (e *env) scanOrphans(stream jetstream.Stream) ([]orphan, error) {
	floors, err := e.ackFloors()
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(e.ctx)
	if err != nil {
		return nil, err
	}
	results, err := e.js.Stream(e.ctx, e.topo.ResultsStream)
	if err != nil {
		results = nil // the orphans are still shown, without their results
	}
	var found []orphan
	for _, l := range e.topo.Lanes() {
		for seq := info.State.FirstSeq; seq <= floors[l.Name] && len(found) < maxOrphans; {
			m, err := stream.GetMsg(e.ctx, seq, jetstream.WithGetMsgSubject(l.Filter))
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s from sequence %d: %w", e.topo.JobsStream, seq, err)
			}
			if m.Sequence > floors[l.Name] {
				break
			}
			found = append(found, e.describe(results, l.Name, m))
			seq = m.Sequence + 1
		}
	}
	return found, nil
}

// describe names an orphan by its job and tells whether the job's result is
// kept in results (a sign that the job was done before the crash).
func (e *env) describe(results jetstream.Stream, lane string, m *jetstream.RawStreamMsg) orphan {
	o := orphan{Lane: lane, Sequence: m.Sequence, Subject: m.Subject, Published: m.Time}
	var j struct {
		JobID   string `json:"jobId"`
		ReplyTo string `json:"replyTo"`
	}
	if json.Unmarshal(m.Data, &j) == nil && j.JobID != "" {
		o.JobID = j.JobID
		subject := e.topo.ResultSubject(j.ReplyTo, j.JobID)
		if results != nil && e.topo.ValidReplyTo(subject) {
			_, err := results.GetLastMsgForSubject(e.ctx, subject)
			o.Result = err == nil
		}
	}
	return o
}

func repairFlags(fs *flag.FlagSet) command {
	yes := fs.Bool("yes", false, "remove without asking")
	asJSON := fs.Bool("json", false, "print what would be removed as JSON and remove nothing")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
		}
		return e.repair(*yes, *asJSON)
	}}
}

// repair shows the orphans, asks, and removes them from the job stream.
func (e *env) repair(yes, asJSON bool) error {
	found, err := e.orphans()
	if err != nil {
		return err
	}
	if asJSON {
		if found == nil {
			found = []orphan{}
		}
		out, _ := json.MarshalIndent(found, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", out)
		return nil
	}
	if len(found) == 0 {
		fmt.Fprintf(e.stdout, "%s holds no orphaned messages: nothing to repair\n", e.topo.JobsStream)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tSEQUENCE\tSUBJECT\tJOB ID\tPUBLISHED\tRESULT KEPT")
	for _, o := range found {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", o.Lane, o.Sequence, o.Subject, o.JobID,
			o.Published.UTC().Format(time.RFC3339), map[bool]string{true: "yes", false: "no"}[o.Result])
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "\n%d messages of %s are at or below their lane's ack floor: their consumer has acknowledged them\n"+
		"and no worker will deliver them again (a crash of a 2.9 server leaves such messages behind).\n", len(found), e.topo.JobsStream)
	if !yes {
		fmt.Fprintf(e.stdout, "Remove them? [y/N] ")
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(e.stdout, "nothing removed")
			return nil
		}
	}
	stream, err := e.js.Stream(e.ctx, e.topo.JobsStream)
	if err != nil {
		return err
	}
	floors, err := e.ackFloors()
	if err != nil {
		return err
	}
	removed := 0
	for _, o := range found {
		if o.Sequence > floors[o.Lane] { // cannot happen: a floor does not go back
			return fmt.Errorf("sequence %d is above the %s lane's ack floor %d now: stopped, %d removed", o.Sequence, o.Lane, floors[o.Lane], removed)
		}
		if err := stream.DeleteMsg(e.ctx, o.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("removing sequence %d: %w (%d removed)", o.Sequence, err, removed)
		}
		removed++
	}
	fmt.Fprintf(e.stdout, "removed %d orphaned messages from %s\n", removed, e.topo.JobsStream)
	if len(found) >= maxOrphans {
		fmt.Fprintln(e.stdout, "there may be more: run enqueue repair again")
	}
	return nil
}
