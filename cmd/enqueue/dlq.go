package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/wire"
	"github.com/mpaas-push/pushworker/job"
)

// deadLetter is one message of the dead-letter stream.
type deadLetter struct {
	Seq        uint64 `json:"seq"`
	JobID      string `json:"jobId"`
	Reason     string `json:"reason"` // rejected, failed or stopped
	Error      string `json:"error"`
	Subject    string `json:"subject"` // where the job came from
	Deliveries int    `json:"deliveries"`
	Targets    int    `json:"targets"` // targets in the dead letter (0 when it is not a job)
	At         string `json:"at"`
	body       []byte
}

// deadLetters reads the whole dead-letter stream.
func (e *env) deadLetters() ([]deadLetter, error) {
	var out []deadLetter
	err := e.readAll(e.topo.DLQStream, func(m jetstream.Msg) { out = append(out, readDeadLetter(m)) })
	return out, err
}

func readDeadLetter(m jetstream.Msg) deadLetter {
	var seq uint64
	var at time.Time
	if meta, err := m.Metadata(); err == nil {
		seq, at = meta.Sequence.Stream, meta.Timestamp
	}
	return newDeadLetter(seq, at, m.Headers(), m.Data())
}

// storedDeadLetter is the dead letter stored at seq.
func (e *env) storedDeadLetter(seq uint64) (deadLetter, error) {
	stream, err := e.js.Stream(e.ctx, e.topo.DLQStream)
	if err != nil {
		return deadLetter{}, err
	}
	m, err := stream.GetMsg(e.ctx, seq)
	if err != nil {
		return deadLetter{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	return newDeadLetter(m.Sequence, m.Time, m.Header, m.Data), nil
}

func newDeadLetter(seq uint64, at time.Time, h nats.Header, body []byte) deadLetter {
	w := wire.DecodeDeadLetter(seq, at, h, body)
	d := deadLetter{Seq: seq, JobID: w.JobID, Reason: w.Reason, Error: w.Error, Subject: w.Subject, Deliveries: int(w.Deliveries), body: body}
	if !at.IsZero() {
		d.At = at.UTC().Format(time.RFC3339)
	}
	if a, err := job.DecodeAdmin(d.body); err == nil && a.Action != "" {
		d.Targets = a.Units()
	} else if j, err := job.Decode(d.body); err == nil {
		d.Targets = j.TargetCount()
	}
	return d
}

func dlqListFlags(fs *flag.FlagSet) command {
	asJSON := fs.Bool("json", false, "print JSON")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
		}
		return e.dlqList(*asJSON)
	}}
}

func dlqReplayFlags(fs *flag.FlagSet) command {
	all := fs.Bool("all", false, "replay every dead letter that can be replayed")
	return command{run: func(e *env, ids []string) error {
		if !*all && len(ids) == 0 {
			return usageError{"name the job ids to replay, or --all"}
		}
		return e.dlqReplay(*all, ids)
	}}
}

func (e *env) dlqList(asJSON bool) error {
	dls, err := e.deadLetters()
	if err != nil {
		return err
	}
	if asJSON {
		if dls == nil {
			dls = []deadLetter{}
		}
		out, _ := json.MarshalIndent(dls, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", out)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tJOB\tREASON\tTARGETS\tDELIVERIES\tAT\tERROR")
	for _, d := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", d.Seq, d.JobID, d.Reason, d.Targets, d.Deliveries, d.At, d.Error)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d dead letter(s)\n", len(dls))
	return nil
}

// dlqReplay publishes the failed targets of dead letters again under derived
// job ids, then removes those dead letters. Rejected jobs are not replayed: they
// would be rejected again.
func (e *env) dlqReplay(all bool, ids []string) error {
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	dls, err := e.deadLetters()
	if err != nil {
		return err
	}
	stream, err := e.js.Stream(e.ctx, e.topo.DLQStream)
	if err != nil {
		return err
	}
	replayed, skipped := 0, 0
	for _, d := range dls {
		if !all && !wanted[d.JobID] {
			continue
		}
		if d.Reason == wire.ReasonRejected {
			fmt.Fprintf(e.stderr, "skipped %s: it was rejected (%s); fix it and publish it again\n", d.JobID, d.Error)
			skipped++
			continue
		}
		newID := replayID(d.JobID, d.Seq)
		body, targets, err := e.replayBody(d, newID)
		if err != nil {
			fmt.Fprintf(e.stderr, "skipped %s: %v\n", d.JobID, err)
			skipped++
			continue
		}
		subject := d.Subject
		if e.topo.Lane(subject) == "" {
			subject = e.topo.EventsSubject("replay")
		}
		ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
		_, err = e.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Data: body, Header: nats.Header{jetstream.MsgIDHeader: []string{newID}}})
		if err == nil {
			err = stream.DeleteMsg(ctx, d.Seq)
		}
		cancel()
		if err != nil {
			return fmt.Errorf("replaying %s: %w", d.JobID, err)
		}
		fmt.Fprintf(e.stdout, "replayed %s as %s: %d targets to %s\n", d.JobID, newID, targets, subject)
		replayed++
	}
	fmt.Fprintf(e.stdout, "%d replayed, %d skipped\n", replayed, skipped)
	if replayed == 0 && len(ids) > 0 {
		return exitError{1}
	}
	return nil
}

// replayBody is the dead letter as a job again under newID: a push job, or an
// admin job when it came on an admin subject.
func (e *env) replayBody(d deadLetter, newID string) ([]byte, int, error) {
	if e.topo.IsAdmin(d.Subject) {
		a, err := job.DecodeAdmin(d.body)
		if err != nil {
			return nil, 0, err
		}
		a.JobID = newID
		body, err := a.Encode()
		return body, a.Units(), err
	}
	j, err := job.Decode(d.body)
	if err != nil {
		return nil, 0, err
	}
	j.JobID = newID
	body, err := j.Encode()
	return body, j.TargetCount(), err
}

// replayID derives a replay's job id from the old one and the dead letter's
// sequence: the same dead letter always gives the same id, so a replay run twice
// is dropped by the job stream's duplicate window.
func replayID(old string, seq uint64) string {
	id := old + ".replay" + strconv.FormatUint(seq, 10)
	if job.ValidJobID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(old))
	return "replay-" + hex.EncodeToString(sum[:8]) + ".replay" + strconv.FormatUint(seq, 10)
}
