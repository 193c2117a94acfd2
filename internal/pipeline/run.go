package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// run is one delivery of one valid job: who holds its claims, and what became
// of it. Its goroutines (one per chunk in flight) write only their own chunk.
type run struct {
	j        *job.Job
	d        consumer.Delivery
	holder   dedupe.Holder
	event    bool
	campaign string // "" for an event job
	log      *zap.Logger

	// Set by any chunk: the campaign was paused (park the job) or canceled.
	parked, canceled atomic.Bool
	// Set by a claim: a later delivery of the message holds the job's claims.
	superseded atomic.Bool
	received   time.Time

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
	handed  bool        // not finished on this delivery
	skipped job.Targets // lost to another job while this chunk waited out a worker problem
}

// process runs one delivery of a valid job whose JobID is set.
func (p *Pipeline) process(ctx context.Context, j *job.Job, d consumer.Delivery, log *zap.Logger) *run {
	r := &run{j: j, d: d, event: event(d), campaign: p.cfg.Rules.Topology.Campaign(d.Subject), log: log,
		holder: dedupe.Holder{JobID: j.JobID, Message: strconv.FormatUint(d.Sequence, 10), Delivery: d.Number, Token: newToken()}}
	started := p.cfg.Clock.Now()
	r.received = started
	cl := &claimer{p: p, r: r, pending: j.Pairs()}
	var (
		mu     sync.Mutex
		wg     sync.WaitGroup
		chunks []*chunk
		handed bool
	)
	for cl.more() {
		if r.expired(p) {
			for _, t := range job.Chunk(cl.giveUp(), j.CallSize()) {
				chunks = append(chunks, &chunk{targets: t, result: deadline(t, 0)})
			}
			break
		}
		// Hold a call slot before taking a chunk, so that claims wait for calls
		// only as long as the claims made ahead of them.
		if err := p.slots.Acquire(ctx, r.event); err != nil {
			handed = true
			break
		}
		if r.halted(p) || r.superseded.Load() {
			p.slots.Release(r.event)
			break
		}
		c, err := cl.next(ctx)
		if r.superseded.Load() {
			if c != nil {
				p.releaseClaims(r, c.keys)
			}
			p.slots.Release(r.event)
			break
		}
		if err != nil || c == nil { // c == nil: every target left was a duplicate or sent before
			p.slots.Release(r.event)
			handed = handed || err != nil
			if err != nil {
				break
			}
			continue
		}
		chunks = append(chunks, c)
		wg.Add(1)
		p.senders.Go(func() {
			defer wg.Done()
			defer p.slots.Release(r.event)
			p.send(ctx, r, c)
			if c.handed {
				mu.Lock()
				handed = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	switch {
	case r.canceled.Load():
		// Nothing more is sent. The targets left are still claimed, without a call,
		// so that those an earlier delivery sent count as sent; the rest fail as canceled.
		for cl.more() {
			c, err := cl.next(ctx)
			if err != nil {
				break
			}
			if c != nil {
				p.releaseClaims(r, c.keys)
				chunks = append(chunks, &chunk{targets: c.targets, result: canceled(c.targets, 0)})
			}
		}
		for _, t := range job.Chunk(cl.giveUp(), j.CallSize()) {
			chunks = append(chunks, &chunk{targets: t, result: canceled(t, 0)})
		}
		handed = false
		for _, c := range chunks {
			if c.handed {
				c.handed, c.result = false, canceled(c.targets, c.result.Attempts)
			}
		}
	case r.superseded.Load():
		handed = true
		cl.giveUp() // releases only what this delivery still holds
	case handed || r.parked.Load():
		handed = true
		cl.giveUp()
	}
	r.finish(p, cl, chunks, handed, started)
	return r
}

// finish builds the result, in one place, from what the claims found and what
// each chunk became.
func (r *run) finish(p *Pipeline, cl *claimer, chunks []*chunk, handed bool, started time.Time) {
	res := job.NewResult(r.j, r.d.Number, started)
	res.Campaign = p.cfg.Rules.Topology.Campaign(r.d.Subject)
	for _, c := range cl.sentBefore {
		res.AddChunk(*c)
	}
	for _, t := range cl.skipped {
		res.AddSkipped(t)
	}
	for _, c := range chunks {
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

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// event reports a delivery of the default (events) lane: its calls go before bulk calls.
func event(d consumer.Delivery) bool { return d.Lane == topology.LaneDefault }
