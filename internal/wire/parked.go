package wire

import (
	"strconv"

	"github.com/nats-io/nats.go"
)

// Parked is a paused campaign's job as received, stored on the parking stream
// with the subject it came on and its job id.
type Parked struct {
	JobID   string
	Subject string // the job subject it came on
	Seq     uint64 // where it was: the job stream's sequence when parking, the parking stream's when read back
	Body    []byte
}

// ParkMsg is p to publish on parkSubject. Nats-Msg-Id park-<seq>-<jobId> names
// the delivery (p.Seq in the job stream), so that a worker that parks the same
// message again after a crash stores it once.
func (p Parked) ParkMsg(parkSubject string) *nats.Msg {
	m := &nats.Msg{Subject: parkSubject, Data: p.Body, Header: nats.Header{}}
	m.Header.Set(HeaderJobID, p.JobID)
	m.Header.Set(HeaderSubject, p.Subject)
	m.Header.Set(nats.MsgIdHdr, "park-"+strconv.FormatUint(p.Seq, 10)+"-"+p.JobID)
	return m
}

// UnparkMsg is p, read back from the parking stream (p.Seq its sequence there),
// to publish on the job subject again. Its job id goes with it (see ParkedAs);
// Nats-Msg-Id unpark-<parkedSeq>-<jobId> is one the job stream's duplicate
// window cannot confuse with the job's original id, and the same for a second
// attempt to put the same parked message back.
func (p Parked) UnparkMsg(subject string) *nats.Msg {
	m := &nats.Msg{Subject: subject, Data: p.Body, Header: nats.Header{}}
	m.Header.Set(HeaderJobID, p.JobID)
	m.Header.Set(nats.MsgIdHdr, "unpark-"+strconv.FormatUint(p.Seq, 10)+"-"+p.JobID)
	return m
}

// DecodeParked reads a parked job back from the parking stream.
func DecodeParked(seq uint64, h nats.Header, body []byte) Parked {
	return Parked{JobID: h.Get(HeaderJobID), Subject: h.Get(HeaderSubject), Seq: seq, Body: body}
}

// ParkedAs is the job id a job on the job stream came back from parking with,
// or "" for any other job.
func ParkedAs(h nats.Header) string { return h.Get(HeaderJobID) }
