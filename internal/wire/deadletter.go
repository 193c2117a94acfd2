package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mpaas-push/pushworker/job"
)

// Headers of a dead letter; its body is the job as received, or the job with
// only its failed targets.
const (
	HeaderReason     = "Pushworker-Reason"     // rejected, failed or stopped
	HeaderError      = "Pushworker-Error"      // the last error, one line
	HeaderJobID      = "Pushworker-Job-Id"     // the job's id (or its fallback id); also a parked job's
	HeaderSubject    = "Pushworker-Subject"    // the subject the job came on; also a parked job's
	HeaderDeliveries = "Pushworker-Deliveries" // how many times it was delivered
	// A letter too big to store whole keeps a prefix of its body: these say so.
	HeaderBodyBytes  = "Pushworker-Body-Bytes"  // the whole body's length
	HeaderBodySHA256 = "Pushworker-Body-Sha256" // the whole body's SHA-256, hex
)

// MaxPrefix is how much of its body a truncated dead letter keeps.
const MaxPrefix = 4 << 10

// Dead-letter reasons.
const (
	ReasonRejected = "rejected" // the job is invalid: the bytes as received
	ReasonFailed   = "failed"   // targets that failed for good: the job with only those
	ReasonStopped  = "stopped"  // the last delivery ended without a result: the job as received
)

// DeadLetter is one message of the dead-letter stream. Seq and At are the
// stream's (zero before it is stored).
type DeadLetter struct {
	Seq        uint64
	At         time.Time
	JobID      string
	Reason     string
	Error      string
	Subject    string // where the job came from
	Deliveries uint64
	Body       []byte
	// BodyBytes and BodySHA256 are set when Body is a prefix (Truncate): the
	// whole body's length and digest. Such a letter cannot be replayed.
	BodyBytes  int
	BodySHA256 string
}

// Truncated reports a letter that keeps only a prefix of its body.
func (d DeadLetter) Truncated() bool { return d.BodySHA256 != "" }

// Truncate is the letter with its body cut to MaxPrefix bytes, its length and
// SHA-256 kept: for a letter too big to store whole.
func (d DeadLetter) Truncate() DeadLetter {
	if d.Truncated() {
		return d
	}
	sum := sha256.Sum256(d.Body)
	d.BodyBytes, d.BodySHA256 = len(d.Body), hex.EncodeToString(sum[:])
	d.Body = d.Body[:min(len(d.Body), MaxPrefix)]
	return d
}

// Msg is the dead letter to publish on subject. Nats-Msg-Id is dlq-<jobId>: a
// worker that dead-letters the same job again inside the duplicate window
// stores it once.
func (d DeadLetter) Msg(subject string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: d.Body, Header: nats.Header{}}
	// The error, job id and subject come from (or quote) the message: each is
	// clipped, so the headers stay a few hundred bytes whatever came in.
	m.Header.Set(HeaderReason, d.Reason)
	m.Header.Set(HeaderError, job.Clip(d.Error))
	m.Header.Set(HeaderJobID, job.Clip(d.JobID))
	m.Header.Set(HeaderSubject, job.Clip(d.Subject))
	m.Header.Set(HeaderDeliveries, strconv.FormatUint(d.Deliveries, 10))
	m.Header.Set(nats.MsgIdHdr, "dlq-"+job.Clip(d.JobID))
	if d.Truncated() {
		m.Header.Set(HeaderBodyBytes, strconv.Itoa(d.BodyBytes))
		m.Header.Set(HeaderBodySHA256, d.BodySHA256)
	}
	return m
}

// DecodeDeadLetter reads a stored dead letter back from its parts. Headers a
// letter lacks stay empty: a letter is shown and replayed whatever its headers.
func DecodeDeadLetter(seq uint64, at time.Time, h nats.Header, body []byte) DeadLetter {
	d := DeadLetter{Seq: seq, At: at, JobID: h.Get(HeaderJobID), Reason: h.Get(HeaderReason), Error: h.Get(HeaderError),
		Subject: h.Get(HeaderSubject), Body: body}
	d.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeliveries), 10, 64)
	if sum := h.Get(HeaderBodySHA256); sum != "" {
		d.BodySHA256 = sum
		d.BodyBytes, _ = strconv.Atoi(h.Get(HeaderBodyBytes))
	}
	return d
}
