package pipeline

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// run is one delivery of one valid job: who holds its claims, the calls it
// started, and what became of it. Its senders (one goroutine per chunk in
// flight) write only their own chunk and the run's atomic flags.
type run struct {
	j        *job.Job
	d        consumer.Delivery
	holder   dedupe.Holder
	event    bool
	campaign string    // "" for an event job
	started  time.Time // the result's start, and the clock of Config.Recheck
	log      *zap.Logger

	// Set by any chunk: the campaign was paused (park the job) or canceled.
	parked, canceled atomic.Bool
	// Set by a claim: a later delivery of the message holds the job's claims.
	superseded atomic.Bool
	// Set by the calls: targets are handed back to a later delivery.
	handed atomic.Bool

	chunks []*chunk       // every chunk taken, in order (process's goroutine only)
	calls  sync.WaitGroup // the senders whose chunk has not ended yet
	// The sent marks of chunks that ended: the result is built and published
	// while the last ones are stored, and the message is settled after them.
	marks sync.WaitGroup

	// The outcome, filled in by process once every chunk has ended.
	result    *job.Result // nil: hand the job back
	failed    job.Targets // failed for good, to dead-letter
	lastError string
	sent      int
}

// chunk is one call's worth of claimed targets and what became of it.
type chunk struct {
	targets job.Targets
	keys    []dedupe.Key
	result  job.ChunkResult
	handed  bool         // not finished on this delivery
	mark    *dedupe.Mark // sent: the mark to store once the chunk's result is in
	skipped job.Targets  // lost to another job while this chunk waited out a worker problem
}

// process runs one delivery of a valid job whose JobID is set: it starts the
// job's calls one after the other until no target is left to claim or the run
// stopped, waits for them, winds the run up and builds its result.
func (p *Pipeline) process(ctx context.Context, j *job.Job, d consumer.Delivery, log *zap.Logger) *run {
	r := &run{j: j, d: d, event: event(d), campaign: p.cfg.Rules.Topology.Campaign(d.Subject), log: log,
		holder: dedupe.Holder{JobID: j.JobID, Message: holderMessage(j, d), Delivery: d.Number, Token: dedupe.NewToken()}}
	r.started = p.cfg.Clock.Now()
	if r.event {
		// An event's claims and marks go at once, not after a campaign's batch in flight.
		ctx = dedupe.Urgent(ctx)
	}
	cl := &claimer{p: p, r: r, pending: j.Pairs()}
	for more := len(cl.pending) > 0; more; {
		more = p.startNext(ctx, r, cl)
	}
	r.calls.Wait()
	r.finish(p, cl, p.wrapUp(ctx, r, cl))
	return r
}

// wrapUp does what the run's end calls for once its calls are done, and
// reports whether the job is handed back. A canceled campaign's job sends
// nothing more: the targets left are still claimed, without a call, so that
// those an earlier delivery sent count as sent, and the rest fail as canceled.
// A superseded run, a parked one and one that hands targets back release the
// claims they made ahead.
func (p *Pipeline) wrapUp(ctx context.Context, r *run, cl *claimer) (handed bool) {
	switch {
	case r.canceled.Load():
		for cl.more() {
			c, _, err := cl.next(ctx)
			if err != nil {
				break
			}
			if c != nil {
				p.releaseClaims(r, c.keys)
				r.chunks = append(r.chunks, &chunk{targets: c.targets, result: canceled(c.targets, 0)})
			}
		}
		for _, t := range job.Chunk(cl.giveUp(), r.j.CallSize()) {
			r.chunks = append(r.chunks, &chunk{targets: t, result: canceled(t, 0)})
		}
		for _, c := range r.chunks {
			if c.handed {
				c.handed, c.result = false, canceled(c.targets, c.result.Attempts)
			}
		}
		return false
	case r.superseded.Load():
		cl.giveUp() // releases only what this delivery still holds
		return true
	case r.handed.Load() || r.parked.Load():
		cl.giveUp()
		return true
	}
	return false
}

// finish builds the result, in one place, from what the claims found and what
// each chunk became.
func (r *run) finish(p *Pipeline, cl *claimer, handed bool) {
	res := job.NewResult(r.j, r.d.Number, r.started)
	res.Campaign = p.cfg.Rules.Topology.Campaign(r.d.Subject)
	for _, c := range cl.sentBefore {
		res.AddChunk(*c)
	}
	for _, t := range cl.skipped {
		res.AddSkipped(t)
	}
	for _, c := range r.chunks {
		for _, t := range c.skipped {
			res.AddSkipped(t)
		}
		if c.handed || c.result.Status == "" { // handed back, or nothing left to send
			continue
		}
		res.AddChunk(c.result)
		p.obs.Chunk(r.d.Lane, c.result.Status)
		// A canceled campaign's unsent targets end in the result only: a dead
		// letter each would be replayed against the operator's cancel.
		if c.result.Status == job.ChunkFailed && c.result.Error != ErrCampaignCanceled {
			r.failed = append(r.failed, c.result.TargetMsgkey...)
			r.lastError = c.result.Error
		}
	}
	p.obs.Duplicates(r.d.Lane, res.Duplicates)
	r.sent = res.Sent
	if !handed {
		r.result = res.Finish(p.cfg.Clock.Now())
		if r.canceled.Load() && res.Failed > 0 {
			r.result.Status = job.StatusCanceled
		}
	}
}

func deadline(t job.Targets, attempts int) job.ChunkResult {
	return job.ChunkResult{TargetMsgkey: t, Status: job.ChunkFailed, Attempts: attempts, Error: "deadline passed"}
}

// ErrCampaignCanceled is the error of the targets a canceled campaign did not send.
const ErrCampaignCanceled = "campaign canceled"

func canceled(t job.Targets, attempts int) job.ChunkResult {
	return job.ChunkResult{TargetMsgkey: t, Status: job.ChunkFailed, Attempts: attempts, Error: ErrCampaignCanceled}
}

// holderMessage is the message a delivery's claims name: its stream sequence,
// and for a broadcast also the delivery number. A later delivery of a pair's
// message takes an earlier one's lease over (the earlier one is taken for
// dead), which may push the pair twice when the earlier one died mid-call;
// a broadcast goes out at most once, so no delivery takes another's lease
// over: it waits for that one's sent mark, or for its lease to expire (claim.go).
func holderMessage(j *job.Job, d consumer.Delivery) string {
	seq := strconv.FormatUint(d.Sequence, 10)
	if j.IsBroadcast() {
		return seq + "." + strconv.Itoa(d.Number)
	}
	return seq
}

// ErrBroadcastHeld is the error of a broadcast whose last delivery found a
// call of it that may have gone out without an answer: another delivery's
// (still claimed, no sent mark) or its own that timed out.
const ErrBroadcastHeld = "a call of this broadcast may have gone out without an answer (timed out, or made by a delivery that stopped): not sent again, a broadcast goes out at most once"

// event reports a delivery of the default (events) lane: its calls go before bulk calls.
func event(d consumer.Delivery) bool { return d.Lane == topology.LaneDefault }
