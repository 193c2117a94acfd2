package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/job"
)

// DefaultResultScan is Ops.ResultScan's default.
const DefaultResultScan = 10000

// ErrInvalidJobID: what was given cannot be a job id (job.ValidJobID).
var ErrInvalidJobID = errors.New("not a job id")

// Result is the stored result of job id. It reads by subject, one message each,
// never the stream: the job's default subject <root>.results.<id>, then a
// campaign's <root>.results.<campaign>.<id> (as enqueue load names them). A
// result that went to a replyTo of the job's own elsewhere under
// <root>.results.> has no subject that the id alone names: for that one
// Result reads the newest ResultScan results, newest match wins, so an older
// one is not found. Use ResultOn when the replyTo is known. No result:
// ErrNotFound, wrapped in an error naming the id.
func (o *Ops) Result(ctx context.Context, id string) (*job.Result, error) {
	if !job.ValidJobID(id) {
		return nil, fmt.Errorf("%q: %w", id, ErrInvalidJobID)
	}
	stream, err := o.results(ctx)
	if err != nil {
		return nil, err
	}
	// A wildcard last-by-subject is the newest result of any campaign with this
	// id's last tokens: a dotted job id of another job can match it, hence the
	// check of the id.
	for _, subject := range []string{o.topo.ResultSubject("", id), o.topo.ResultPrefix() + "*." + id} {
		r, err := lastResult(ctx, stream, subject, id)
		if err == nil || !errors.Is(err, ErrNotFound) {
			return r, err
		}
	}
	var found *job.Result
	quoted := []byte(`"` + id + `"`)
	err = o.ReadNewest(ctx, o.topo.ResultsStream, uint64(max(o.ResultScan, 1)), func(m jetstream.Msg) {
		if !bytes.Contains(m.Data(), quoted) {
			return
		}
		var r job.Result
		if json.Unmarshal(m.Data(), &r) == nil && r.JobID == id {
			found = &r
		}
	})
	if err != nil {
		return nil, err
	}
	if found == nil {
		return nil, fmt.Errorf("no result of job %s is kept (results under a replyTo of the job's own are looked for among the newest %d): %w",
			id, o.ResultScan, ErrNotFound)
	}
	return found, nil
}

// ResultOn is the stored result of job id that went to replyTo (empty: the
// default subject), when it is the last message on that subject: a subject
// that several jobs share keeps only the newest result for this read.
func (o *Ops) ResultOn(ctx context.Context, replyTo, id string) (*job.Result, error) {
	stream, err := o.results(ctx)
	if err != nil {
		return nil, err
	}
	return lastResult(ctx, stream, o.topo.ResultSubject(replyTo, id), id)
}

func (o *Ops) results(ctx context.Context) (jetstream.Stream, error) {
	return o.stream(ctx, o.topo.ResultsStream)
}

// lastResult is the last message on subject when it is job id's result.
func lastResult(ctx context.Context, stream jetstream.Stream, subject, id string) (*job.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	m, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("no result of job %s on %s: %w", id, subject, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", subject, err)
	}
	var r job.Result
	if err := json.Unmarshal(m.Data, &r); err != nil {
		return nil, fmt.Errorf("the result on %s (sequence %d): %w: %v", subject, m.Sequence, ErrUnreadable, err)
	}
	if r.JobID != id {
		return nil, fmt.Errorf("the last result on %s is job %s's, not %s's: %w", subject, r.JobID, id, ErrNotFound)
	}
	return &r, nil
}
