package pipeline

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/job"
)

// claimAhead is how many targets one claim round trip takes at least: several
// PushTemplate calls' worth, or one PushMultiple call's.
const claimAhead = 5 * job.MaxTargetsPerCall

// claimer claims a job's targets ahead of its calls, in the job's order, and
// hands them out a call at a time. It records, for the result, the pairs another
// job owns (skipped) and the pairs an earlier delivery of this job sent
// (sentBefore, under that call's request id).
type claimer struct {
	p          *Pipeline
	r          *run
	pending    job.Targets  // not claimed yet
	ready      job.Targets  // claimed, waiting for a call
	readyKeys  []dedupe.Key // their keys
	skipped    job.Targets
	sentBefore []*job.ChunkResult // in order of first appearance
	byRequest  map[string]*job.ChunkResult
}

func (c *claimer) more() bool { return len(c.ready) > 0 || len(c.pending) > 0 }

// next is the next call's chunk, or nil when every target left was skipped,
// and whether targets are left after it.
func (c *claimer) next(ctx context.Context) (ch *chunk, more bool, err error) {
	size := c.callSize()
	for len(c.ready) < size && len(c.pending) > 0 {
		if err := c.claim(ctx, size); err != nil {
			return nil, c.more(), err
		}
	}
	if len(c.ready) == 0 {
		return nil, c.more(), nil
	}
	n := min(size, len(c.ready))
	ch = &chunk{targets: c.ready[:n:n], keys: c.readyKeys[:n:n]}
	c.ready, c.readyKeys = c.ready[n:], c.readyKeys[n:]
	return ch, c.more(), nil
}

// callSize is how many targets the next call takes: the job's size, or less
// while its campaign is paced.
func (c *claimer) callSize() int {
	if c.r.campaign == "" {
		return c.r.j.CallSize()
	}
	return campaign.CallSize(c.p.cfg.Campaigns.Get(c.r.campaign).TargetsPerSecond, c.r.j.CallSize())
}

// claim claims the next window of pending targets, at least one call's, in one round trip.
func (c *claimer) claim(ctx context.Context, size int) error {
	n := min(max(claimAhead, size), len(c.pending))
	window := c.pending[:n]
	keys := keysOf(c.r.j, window)
	ctx, span := c.p.cfg.Tracer.Start(ctx, "claims")
	defer span.End()
	claims, err := c.p.claimPairs(ctx, c.r.holder, keys)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	c.pending = c.pending[n:]
	for i, cl := range claims {
		switch cl.State {
		case dedupe.Claimed:
			c.ready = append(c.ready, window[i])
			c.readyKeys = append(c.readyKeys, keys[i])
		case dedupe.SentBySelf:
			c.addSentBefore(window[i], cl.Mark)
		case dedupe.Superseded:
			c.r.superseded.Store(true)
		case dedupe.LeasedByOther:
			if c.r.j.IsBroadcast() && cl.Owner == c.r.j.JobID {
				c.heldBroadcast(window[i])
				continue
			}
			fallthrough
		default:
			c.skipped = append(c.skipped, window[i])
		}
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.Int("pushworker.targets", n), attribute.Int("pushworker.claimed", len(c.ready)),
			attribute.Int("pushworker.skipped", len(c.skipped)))
	}
	return nil
}

func (c *claimer) addSentBefore(t job.Target, m dedupe.Mark) {
	if c.byRequest == nil {
		c.byRequest = map[string]*job.ChunkResult{}
	}
	cr := c.byRequest[m.RequestID]
	if cr == nil {
		cr = &job.ChunkResult{Status: job.ChunkSent, Attempts: m.Attempts, RequestID: m.RequestID,
			ResultCode: "OK", PushSuccess: true, Data: m.Data}
		c.byRequest[m.RequestID] = cr
		c.sentBefore = append(c.sentBefore, cr)
	}
	cr.TargetMsgkey = append(cr.TargetMsgkey, t)
}

// heldBroadcast takes a broadcast that another delivery of this job holds
// (holderMessage): one that died mid-call, or still calling. It is not sent
// here: the job is handed back, to find that delivery's sent mark (or its
// lease expired) next time; on the last delivery it fails, unsent.
func (c *claimer) heldBroadcast(t job.Target) {
	if !c.r.d.Last {
		c.r.handed.Store(true)
		return
	}
	ts := job.Targets{t}
	c.r.chunks = append(c.r.chunks, &chunk{targets: ts, result: job.ChunkResult{TargetMsgkey: ts, Status: job.ChunkFailed, Error: ErrBroadcastHeld}})
}

// giveUp releases the claims made ahead and returns every target not handed out.
func (c *claimer) giveUp() job.Targets {
	c.p.releaseClaims(c.r, c.readyKeys)
	left := append(c.ready[:len(c.ready):len(c.ready)], c.pending...)
	c.ready, c.readyKeys, c.pending = nil, nil, nil
	return left
}

func keysOf(j *job.Job, t job.Targets) []dedupe.Key {
	keys := make([]dedupe.Key, len(t))
	for i, x := range t {
		keys[i] = dedupe.Key{AppID: j.AppID, WorkspaceID: j.WorkspaceID, Target: x.Target, MsgKey: x.MsgKey}
	}
	return keys
}
