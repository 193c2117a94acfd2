package loader

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/mpaas-push/pushworker/job"
)

// Sink receives the jobs of a load: a Publisher, or nothing in a dry run.
type Sink interface {
	Publish(ctx context.Context, id string, targets int, body []byte) error
}

// Options of a load.
type Options struct {
	Campaign Campaign
	Rules    job.Rules
	Rejects  io.Writer // one "line,reason" row per bad row; nil: not written
	Strict   bool      // stop at the first bad row
	Sink     Sink      // nil: dry run, validate only
	Progress func(Summary)
}

// Summary counts a load. Jobs and Targets are what the loader made and handed to
// the Sink; what the stream stored is the Publisher's to count.
type Summary struct {
	Rows     int           `json:"rows"`
	Rejected int           `json:"rejected"`
	Jobs     int           `json:"jobs"`
	Targets  int           `json:"targets"`
	Elapsed  time.Duration `json:"-"`
}

// ErrStrict stops a strict load at its first bad row.
var ErrStrict = errors.New("stopped at a bad row (--strict)")

type run struct {
	o       Options
	s       Summary
	ctx     context.Context
	started time.Time
	lastTag time.Time
	rejects *bufio.Writer
}

func newRun(ctx context.Context, o Options) *run {
	r := &run{o: o, ctx: ctx, started: time.Now()}
	if o.Rejects != nil {
		r.rejects = bufio.NewWriter(o.Rejects)
		fmt.Fprintln(r.rejects, "line,reason")
	}
	return r
}

func (r *run) reject(line int, reason string) error {
	r.s.Rejected++
	if r.rejects != nil {
		fmt.Fprintf(r.rejects, "%d,%s\n", line, strconv.Quote(reason))
	}
	if r.o.Strict {
		return fmt.Errorf("line %d: %s: %w", line, reason, ErrStrict)
	}
	return nil
}

// emit validates and sends one job made of rows.
func (r *run) emit(j *job.Job) error { return r.emitAt(j, 0) }

// emitAt validates and sends one job; a job that fails is a rejected row when it
// is one line of the file (line > 0), else every row of it is rejected at once.
func (r *run) emitAt(j *job.Job, line int) error {
	err := j.Validate(r.o.Rules)
	var body []byte
	if err == nil {
		body, err = j.Encode()
	}
	if err == nil && r.o.Campaign.MaxBytes > 0 && len(body) > r.o.Campaign.MaxBytes {
		err = fmt.Errorf("the job is %d bytes, over the %d a job may have (the server's max_payload less %d for headers)",
			len(body), r.o.Campaign.MaxBytes, HeaderRoom)
	}
	if err != nil && line > 0 {
		return r.reject(line, err.Error())
	}
	if err != nil {
		// Every row of the job shares the failure: report the job once.
		r.s.Rejected += j.TargetCount()
		if r.rejects != nil {
			fmt.Fprintf(r.rejects, "0,%s\n", strconv.Quote(fmt.Sprintf("job %s (%d targets): %v", j.JobID, j.TargetCount(), err)))
		}
		if r.o.Strict {
			return fmt.Errorf("job %s: %v: %w", j.JobID, err, ErrStrict)
		}
		return nil
	}
	r.s.Jobs++
	r.s.Targets += j.TargetCount()
	if r.o.Sink != nil {
		if err := r.o.Sink.Publish(r.ctx, j.JobID, j.TargetCount(), body); err != nil {
			return err
		}
	}
	r.progress()
	return nil
}

func (r *run) progress() {
	if r.o.Progress == nil || time.Since(r.lastTag) < 200*time.Millisecond {
		return
	}
	r.lastTag = time.Now()
	r.s.Elapsed = time.Since(r.started)
	r.o.Progress(r.s)
}

func (r *run) finish(err error) (Summary, error) {
	if r.rejects != nil {
		if ferr := r.rejects.Flush(); err == nil {
			err = ferr
		}
	}
	r.s.Elapsed = time.Since(r.started)
	return r.s, err
}

// collector turns rows into jobs: a Grouper (PushTemplate) or a Batcher (PushMultiple).
type collector interface {
	Add(Row) error
	Close() error
}

// LoadCSV loads a CSV campaign: with Campaign.API APIMultiple into targetMsgs
// jobs in file order, else into targetMsgkey jobs grouped by template values. A
// target that repeats anywhere in the file is a rejected row naming the line of
// its first appearance.
func LoadCSV(ctx context.Context, in io.Reader, o Options) (Summary, error) {
	r := newRun(ctx, o)
	c, err := NewCSV(in)
	if err != nil {
		return r.finish(err)
	}
	var g collector
	if o.Campaign.API == job.APIMultiple {
		g, err = NewBatcher(o.Campaign, c.Vars(), r.emit)
	} else {
		g, err = NewGrouper(o.Campaign, c.Vars(), r.emit)
	}
	if err != nil {
		return r.finish(err)
	}
	seen := newSeenTargets()
	for {
		if err := ctx.Err(); err != nil {
			return r.finish(err)
		}
		row, err := c.Next()
		if err == io.EOF {
			break
		}
		var re *RowError
		switch {
		case errors.As(err, &re):
			r.s.Rows++
			if err := r.reject(re.Line, re.Reason); err != nil {
				return r.finish(err)
			}
			continue
		case err != nil:
			return r.finish(err)
		}
		r.s.Rows++
		if line, dup := seen.first(row.Target, row.Line); dup {
			if err := r.reject(row.Line, fmt.Sprintf("target %q is already on line %d", row.Target, line)); err != nil {
				return r.finish(err)
			}
			continue
		}
		if err := g.Add(row); errors.As(err, &re) {
			if err := r.reject(re.Line, re.Reason); err != nil {
				return r.finish(err)
			}
		} else if err != nil {
			return r.finish(err)
		}
	}
	return r.finish(g.Close())
}

// LoadJSONL loads JSON Lines of whole jobs; a job without jobId gets
// <campaign>.line<N>.<hash of the line> (see contentID), so a rerun enqueues
// nothing new and another file's line N is another job. A job over MaxBytes is a
// rejected line.
func LoadJSONL(ctx context.Context, in io.Reader, o Options) (Summary, error) {
	r := newRun(ctx, o)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		if err := ctx.Err(); err != nil {
			return r.finish(err)
		}
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		r.s.Rows++
		j, err := job.Decode(text)
		if err == nil {
			if j.JobID == "" {
				h := sha256.New()
				h.Write(text)
				j.JobID = contentID(o.Campaign.ID, "line", line, h)
			}
		}
		if err != nil {
			if err := r.reject(line, err.Error()); err != nil {
				return r.finish(err)
			}
			continue
		}
		if err := r.emitAt(j, line); err != nil {
			return r.finish(err)
		}
	}
	return r.finish(sc.Err())
}
