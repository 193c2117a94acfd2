// Package recall runs the admin jobs of interface contract §7: revoke pushed
// messages or push tasks, cancel scheduled tasks. It owns their decoding and
// validation, a claim in the dedupe store for each call (so that a re-run calls
// nothing twice), the calls with their retries, and each job's result and dead
// letter. It implements consumer.Handler and knows nothing of JetStream:
// consumer.Mux hands it the deliveries of admin subjects.
//
// Recall calls share the worker's call machinery with its pushes, and take it
// from internal/pipeline: the settings (pipeline.Config), the cap on calls in
// flight (pipeline.Slots), the store probe (pipeline.UntilOK) and the shape of
// a rejected job (pipeline.Reject). It may import internal/pipeline for those,
// never the other way round, and nothing of NATS or JetStream (internal/consumer's
// handler types only).
package recall

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mpaas-push/pushworker/internal/consumer"
	"github.com/mpaas-push/pushworker/internal/dedupe"
	"github.com/mpaas-push/pushworker/internal/pause"
	"github.com/mpaas-push/pushworker/internal/pipeline"
	"github.com/mpaas-push/pushworker/internal/push"
	"github.com/mpaas-push/pushworker/job"
)

// Recaller makes the recall calls of admin jobs; the mPaaS client is one.
type Recaller interface {
	RevokeMessage(ctx context.Context, app, workspace, target, msgKey string) push.CallResult
	RevokeTask(ctx context.Context, app, workspace, taskID string) push.CallResult
	CancelScheduled(ctx context.Context, app, workspace string, uniqueIDs []string) push.CallResult
}

// Observer is told what happens, for metrics (the pipeline's observer is one).
// Every method must be cheap.
type Observer interface {
	Call(lane string, out push.CallResult)
	JobInHand(lane string, delta int)
}

type noObserver struct{}

func (noObserver) Call(string, push.CallResult) {}
func (noObserver) JobInHand(string, int)        {}

// Handler runs the deliveries of admin jobs. It is safe for concurrent use.
type Handler struct {
	cfg     pipeline.Config
	store   dedupe.Store
	limiter pipeline.Limiter
	client  Recaller // nil: this worker's mPaaS client cannot recall
	slots   *pipeline.Slots
	gate    *pause.Gate
	log     *zap.Logger
	obs     Observer
}

// New makes a Handler on the pipeline's settings (cfg: its Rules, Attempts,
// Call, StoreProbe, HandBack and Clock count here), store and limiter; its calls
// hold slots of the pipeline's (Pipeline.Slots), so that one cap holds every
// call in flight. A nil client rejects every admin job; log and obs may be nil.
func New(cfg pipeline.Config, store dedupe.Store, limiter pipeline.Limiter, client Recaller, slots *pipeline.Slots,
	gate *pause.Gate, log *zap.Logger, obs Observer) *Handler {
	if obs == nil {
		obs = noObserver{}
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{cfg: cfg.WithDefaults(), store: store, limiter: limiter, client: client, slots: slots, gate: gate, log: log, obs: obs}
}

var _ consumer.Handler = (*Handler)(nil)

// Handle runs one delivery of an admin job: one call per unit, each under a
// claim, a call slot and a slot of the shared rate, retried like a push. It
// runs whatever the campaign's state: recall is what a canceled campaign needs.
func (h *Handler) Handle(ctx context.Context, d consumer.Delivery) consumer.Outcome {
	h.obs.JobInHand(d.Lane, 1)
	defer h.obs.JobInHand(d.Lane, -1)
	fallback := pipeline.FallbackID(d)
	a, err := job.DecodeAdmin(d.Data)
	if err == nil {
		if a.JobID == "" {
			a.JobID = fallback
		}
		err = a.Validate(h.cfg.Rules)
	}
	if err != nil {
		var j *job.Job
		if a != nil {
			j = &job.Job{JobID: a.JobID, ReplyTo: a.ReplyTo, AppID: a.AppID, WorkspaceID: a.WorkspaceID, TaskName: a.Action}
		}
		return h.reject(d, j, fallback, err)
	}
	if h.client == nil {
		return h.reject(d, nil, a.JobID, errors.New("this worker's mPaaS client cannot recall"))
	}
	log := h.log.With(zap.String("job", a.JobID), zap.String("action", a.Action), zap.Int("delivery", d.Number))
	holder := dedupe.Holder{JobID: a.JobID, Message: "admin", Token: dedupe.NewToken()}
	started := h.cfg.Clock.Now()
	us := units(a)
	keys := make([]dedupe.Key, len(us))
	for i, u := range us {
		keys[i] = u.key
	}
	var claims []dedupe.Claim
	if err := h.untilOK(ctx, func() error {
		var err error
		claims, err = h.store.Claim(ctx, holder, keys)
		return err
	}); err != nil {
		return consumer.Outcome{Action: consumer.Release}
	}
	res := &job.Result{JobID: a.JobID, AppID: a.AppID, WorkspaceID: a.WorkspaceID, TaskName: a.Action, API: api(a),
		Campaign: h.cfg.Rules.Topology.Campaign(d.Subject), Deliveries: d.Number, StartedAt: job.Time{Time: started},
		Skipped: job.Targets{}}
	var wg sync.WaitGroup
	for i, u := range us {
		switch claims[i].State {
		case dedupe.SentBySelf: // an earlier delivery made this call
			u.result = u.chunk(push.CallResult{RequestID: claims[i].Mark.RequestID, ResultCode: "OK", PushSuccess: true}, claims[i].Mark.Attempts, job.ChunkSent)
			continue
		case dedupe.Claimed:
		default: // another job made or is making this very call: it reports it
			u.duplicate = true
			continue
		}
		if err := h.slots.Acquire(ctx, false); err != nil {
			u.handed = true
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer h.slots.Release(false)
			h.call(ctx, a, u, holder, d.Last, log)
		}()
	}
	wg.Wait()
	handed := false
	for _, u := range us {
		switch {
		case u.handed:
			handed = true
		case u.duplicate:
			res.Duplicates++
		default:
			// Each unit is one call and counts as one target, pair or task alike.
			res.Chunks = append(res.Chunks, u.result)
			if u.result.Status == job.ChunkSent {
				res.Sent++
			} else {
				res.Failed++
			}
		}
	}
	switch {
	case !handed:
		res.Finish(h.cfg.Clock.Now())
		log.Info("admin job done", zap.Int("done", res.Sent), zap.Int("failed", res.Failed))
		out := consumer.Outcome{Result: res, ResultSubject: h.cfg.Rules.Topology.ResultSubject(a.ReplyTo, a.JobID), Action: consumer.Ack}
		if failed := failedOnly(a, us); failed != nil {
			body, _ := failed.Encode()
			out.DeadLetter = &consumer.DeadLetter{JobID: a.JobID, Body: body, Reason: consumer.ReasonFailed, Error: lastError(us)}
		}
		return out
	case ctx.Err() != nil:
		return consumer.Outcome{Action: consumer.Release}
	default:
		return consumer.Outcome{Action: consumer.Retry, Delay: h.cfg.HandBack.NextRetry(d.Number)}
	}
}

func (h *Handler) reject(d consumer.Delivery, j *job.Job, fallback string, cause error) consumer.Outcome {
	return pipeline.Reject(d, j, fallback, cause, h.cfg.Rules.Topology, h.cfg.Clock.Now(), h.log)
}

// untilOK runs a Redis operation until it succeeds, probing Redis while it is
// down, as the pipeline's store waits do.
func (h *Handler) untilOK(ctx context.Context, f func() error) error {
	return pipeline.UntilOK(ctx, h.gate, h.cfg.Clock, h.cfg.StoreProbe, pause.CauseRedis, f)
}

// release gives up a unit's lease, best effort: a lease that stays expires on its own.
func (h *Handler) release(holder dedupe.Holder, u *unit) {
	u.handed = true
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.store.Release(ctx, holder, []dedupe.Key{u.key}); err != nil {
		h.log.Warn("releasing claims", zap.Int("targets", 1), zap.Error(err))
	}
}
