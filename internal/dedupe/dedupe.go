// Package dedupe makes sure no (appId, workspaceId, target, msgKey) is pushed twice.
//
// Each pair has one key. A job claims it with a lease that names the job, the
// message that carried it and this delivery (a token), then turns it into a "sent"
// mark (job id, mPaaS request id) when mPaaS accepted the push, or releases it when
// the push failed. A lease held under the same job and message by an earlier
// delivery (JetStream gave up on it: its AckWait ran out) is taken over; a lease
// of a later delivery of that message is never taken back: the earlier delivery
// is superseded and stops (a worker that was frozen or starved past its AckWait
// finds this out before its next call). A lease under the same job id from
// another message (the job published twice) is not taken over.
//
// It imports, of this project, only pause and redisbatch.
package dedupe

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/mpaas-push/pushworker/internal/pause"
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
	// Superseded: a later delivery of the same message holds it. This delivery
	// must not push it, nor anything else of the job: the later one owns the job.
	Superseded
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
// not the job's fault. It is pause.ErrUnavailable, the one sentinel for a store
// the worker cannot reach.
var ErrUnavailable = pause.ErrUnavailable

// Holder is who claims: a job, the message that carried it (its stream sequence)
// and one delivery of that message: its number (JetStream's count of
// deliveries, which only grows) and a token of its own. None of them holds a '|'.
type Holder struct {
	JobID, Message string
	Delivery       int
	Token          string
}

// NewToken is a fresh token for a Holder: 8 random bytes in hex.
func NewToken() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
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

// hashKey names a pair's key: the prefix and the first 12 bytes of a SHA-256
// of the pair, as bytes (Redis keys are binary). A hash keeps keys short whatever
// the targets hold (96 bits: a chance of about 10⁻¹¹ that two of a billion pairs
// share a key), and the length-prefixed fields keep ("a:b","c") apart from
// ("a","b:c").
func hashKey(prefix string, k Key) string {
	sum := digest(k)
	out := make([]byte, 0, len(prefix)+pairHashLen)
	out = append(out, prefix...)
	return string(append(out, sum[:pairHashLen]...))
}

const pairHashLen = 12

// digest is the SHA-256 of the pair's length-prefixed fields.
func digest(k Key) [sha256.Size]byte {
	var buf [256]byte // most pairs fit: no allocation
	in := buf[:0]
	for _, f := range [...]string{k.AppID, k.WorkspaceID, k.Target, k.MsgKey} {
		in = strconv.AppendInt(in, int64(len(f)), 10)
		in = append(in, ':')
		in = append(in, f...)
	}
	return sha256.Sum256(in)
}

// The lease under a pair's key while a delivery holds it:
// L|job|message|d<delivery>-<token>. Job ids, messages, tokens and request ids
// hold no '|'. Leases of the layout before the delivery number
// (L|job|message|<token>) read as delivery 0.
func leaseValue(h Holder) string {
	return "L|" + h.JobID + "|" + h.Message + "|d" + strconv.Itoa(h.Delivery) + "-" + h.Token
}

// leaseDelivery is the delivery number a lease's value names (0 when it names none).
func leaseDelivery(v string) int {
	parts := strings.SplitN(v, "|", 4)
	if len(parts) < 4 || !strings.HasPrefix(parts[3], "d") {
		return 0
	}
	n, _, ok := strings.Cut(parts[3][1:], "-")
	d, err := strconv.Atoi(n)
	if !ok || err != nil {
		return 0
	}
	return d
}

// A sent pair's key holds only the id of the call that sent it, as a decimal
// integer (which Redis stores in the key's object itself, with no string of its
// own); the call's record holds the job id and the mark. Records are fields of
// a few hashes (a key per call would cost Redis a key, an expiry entry and
// their hash-table slots for every ten pairs): the hour the call was made and
// one of 1,024 shards name the hash, which expires SentTTL after its hour ends,
// so never before the pairs it describes.
//
// A call id is 63 bits (a Redis integer is signed): the hour (17 bits, hours
// since 1970 modulo 2¹⁷: 15 years apart), the shard (10) and a random field
// number (36).
const (
	idRandomBits = 36
	idShardBits  = 10
	idHourBits   = 63 - idShardBits - idRandomBits
)

func newCallID(now time.Time) uint64 {
	hour := uint64(now.Unix()/3600) & (1<<idHourBits - 1)
	return hour<<(idShardBits+idRandomBits) | rand.Uint64N(1<<(idShardBits+idRandomBits))
}

// recordOf is where call id's record is: its hash and its field.
func recordOf(prefix string, id uint64) (hash, field string) {
	hour := id >> (idShardBits + idRandomBits)
	shard := id >> idRandomBits & (1<<idShardBits - 1)
	// r:HHHHHH:SSSS, 13 bytes after the prefix: never a pair's 12.
	return prefix + "r:" + padded(hour, 6) + ":" + padded(shard, 4), strconv.FormatUint(id&(1<<idRandomBits-1), 10)
}

func padded(n uint64, width int) string {
	s := strconv.FormatUint(n, 10)
	return strings.Repeat("0", max(0, width-len(s))) + s
}

// recordsExpire is when the hash of the records of calls made at now expires:
// SentTTL after the end of that hour.
func recordsExpire(now time.Time, sentTTL time.Duration) time.Time {
	return time.Unix((now.Unix()/3600+1)*3600, 0).Add(sentTTL)
}

func callRecord(jobID string, m Mark) string {
	return jobID + "|" + m.RequestID + "|" + strconv.Itoa(m.Attempts) + "|" + m.Data
}

// parseRecord reads a call record into the claim of a pair it sent.
func parseRecord(v string) Claim {
	parts := strings.SplitN(v, "|", 4)
	c := Claim{State: SentByOther, Owner: parts[0]}
	if len(parts) == 4 {
		c.Mark.RequestID = parts[1]
		c.Mark.Attempts, _ = strconv.Atoi(parts[2])
		c.Mark.Data = parts[3]
	}
	return c
}

// oldKey is a pair's key in the layout before this one: the prefix and 32 hex
// digits of the same hash.
func oldKey(prefix string, k Key) string {
	sum := digest(k)
	return prefix + hex.EncodeToString(sum[:16])
}

// parseOld reads a value of the old layout: S|job|request|attempts|data (sent)
// or L|job|message|token (leased).
func parseOld(v string) Claim {
	if rec, sent := strings.CutPrefix(v, "S|"); sent {
		return parseRecord(rec)
	}
	return parseLease(v)
}

// parseLease reads the value another delivery's lease left.
func parseLease(v string) Claim {
	parts := strings.SplitN(v, "|", 3)
	if len(parts) < 2 {
		return Claim{State: LeasedByOther}
	}
	return Claim{State: LeasedByOther, Owner: parts[1]}
}

// withSelf turns a SentByOther into SentBySelf when the owner is jobID.
func withSelf(c Claim, jobID string) Claim {
	if c.State == SentByOther && c.Owner == jobID {
		c.State = SentBySelf
	}
	return c
}
