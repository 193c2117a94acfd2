// Package dedupe makes sure no (appId, workspaceId, target, msgKey) is pushed twice.
//
// Each pair has one key. A job claims it with a lease that names the job, the
// message that carried it and this delivery (a token), then turns it into a "sent"
// mark (job id, mPaaS request id) when mPaaS accepted the push, or releases it when
// the push failed. A lease held under the same job and message belongs to an
// earlier delivery that JetStream gave up on, and is taken over; a lease under the
// same job id from another message (the job published twice) is not.
package dedupe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/mpaas-push/pushworker/internal/health"
)

// Defaults.
const (
	DefaultSentTTL  = 72 * time.Hour
	DefaultLeaseTTL = 5 * time.Minute
)

// Key is one pair.
type Key struct {
	AppID, WorkspaceID, Target, MsgKey string
}

// State of a pair after a claim.
type State int

const (
	// Claimed: this delivery holds the lease and may push.
	Claimed State = iota
	// SentBySelf: this same job sent it on an earlier delivery; report it as sent.
	SentBySelf
	// SentByOther: another job sent it: a duplicate.
	SentByOther
	// LeasedByOther: another job is sending it right now: a duplicate.
	LeasedByOther
)

// Claim is the answer for one pair.
type Claim struct {
	State State
	Owner string // the job that sent or leases it (for SentBy*, LeasedByOther)
	Mark  Mark   // for SentBySelf: the call that sent it
}

// Mark describes the call that sent a pair.
type Mark struct {
	RequestID string
	Attempts  int
	Data      string // a scheduled push's task id
}

// ErrUnavailable wraps every error of the store itself (Redis down, timeouts):
// not the job's fault. It is health.ErrUnavailable, the one sentinel for a store
// the worker cannot reach.
var ErrUnavailable = health.ErrUnavailable

// Holder is who claims: a job, the message that carried it (its stream sequence)
// and one delivery of that message. None of them holds a '|'.
type Holder struct {
	JobID, Message, Token string
}

// Store is what the worker needs of a dedupe store.
type Store interface {
	// Claim claims every key for h, in one round trip.
	Claim(ctx context.Context, h Holder, keys []Key) ([]Claim, error)
	// MarkSent records that keys were sent by h's call described by m.
	MarkSent(ctx context.Context, h Holder, keys []Key, m Mark) error
	// Release gives up the leases that h holds on keys.
	Release(ctx context.Context, h Holder, keys []Key) error
}

// hashKey names a pair's key: a hash keeps keys short whatever the targets hold,
// and the length-prefixed fields keep ("a:b","c") apart from ("a","b:c").
func hashKey(prefix string, k Key) string {
	h := sha256.New()
	for _, f := range []string{k.AppID, k.WorkspaceID, k.Target, k.MsgKey} {
		h.Write([]byte(strconv.Itoa(len(f))))
		h.Write([]byte{':'})
		h.Write([]byte(f))
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}

// The values stored under a key. Job ids, messages, tokens and request ids hold no '|'.
func leaseValue(h Holder) string { return "L|" + h.JobID + "|" + h.Message + "|" + h.Token }

func sentValue(jobID string, m Mark) string {
	return "S|" + jobID + "|" + m.RequestID + "|" + strconv.Itoa(m.Attempts) + "|" + m.Data
}

// parseClaim reads what the claim script answered: "C" claimed, "T" taken over,
// or the value another holder left.
func parseClaim(v string) Claim {
	if v == "C" || v == "T" {
		return Claim{State: Claimed}
	}
	parts := strings.Split(v, "|")
	if len(parts) < 2 {
		return Claim{State: LeasedByOther}
	}
	owner := parts[1]
	if parts[0] != "S" {
		return Claim{State: LeasedByOther, Owner: owner}
	}
	c := Claim{State: SentByOther, Owner: owner}
	if len(parts) >= 5 {
		c.Mark.RequestID = parts[2]
		c.Mark.Attempts, _ = strconv.Atoi(parts[3])
		c.Mark.Data = parts[4]
	}
	return c
}

// withSelf turns a SentByOther into SentBySelf when the owner is jobID.
func withSelf(c Claim, jobID string) Claim {
	if c.State == SentByOther && c.Owner == jobID {
		c.State = SentBySelf
	}
	return c
}
