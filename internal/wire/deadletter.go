package wire

import (
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Headers of a dead letter; its body is the job as received, or the job with
// only its failed targets.
const (
	HeaderReason     = "Pushworker-Reason"     // rejected, failed or stopped
	HeaderError      = "Pushworker-Error"      // the last error, one line
	HeaderJobID      = "Pushworker-Job-Id"     // the job's id (or its fallback id); also a parked job's
	HeaderSubject    = "Pushworker-Subject"    // the subject the job came on; also a parked job's
	HeaderDeliveries = "Pushworker-Deliveries" // how many times it was delivered
)

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
}

// Msg is the dead letter to publish on subject. Nats-Msg-Id is dlq-<jobId>: a
// worker that dead-letters the same job again inside the duplicate window
// stores it once.
func (d DeadLetter) Msg(subject string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: d.Body, Header: nats.Header{}}
	m.Header.Set(HeaderReason, d.Reason)
	m.Header.Set(HeaderError, d.Error)
	m.Header.Set(HeaderJobID, d.JobID)
	m.Header.Set(HeaderSubject, d.Subject)
	m.Header.Set(HeaderDeliveries, strconv.FormatUint(d.Deliveries, 10))
	m.Header.Set(nats.MsgIdHdr, "dlq-"+d.JobID)
	return m
}

// DecodeDeadLetter reads a stored dead letter back from its parts. Headers a
// letter lacks stay empty: a letter is shown and replayed whatever its headers.
func DecodeDeadLetter(seq uint64, at time.Time, h nats.Header, body []byte) DeadLetter {
	d := DeadLetter{Seq: seq, At: at, JobID: h.Get(HeaderJobID), Reason: h.Get(HeaderReason), Error: h.Get(HeaderError),
		Subject: h.Get(HeaderSubject), Body: body}
	d.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeliveries), 10, 64)
	return d
}
