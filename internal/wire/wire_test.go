package wire

import (
	"reflect"
	"testing"
	"time"
)

// The header names and Nats-Msg-Id forms are a stored format: letters and
// parked jobs written by an older worker must still read back.
func TestDeadLetterWritesAndReadsBack(t *testing.T) {
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	d := DeadLetter{JobID: "spring.7", Reason: ReasonFailed, Error: "8011: too fast", Subject: "push.jobs.bulk.spring",
		Deliveries: 5, Body: []byte(`{"jobId":"spring.7"}`)}
	m := d.Msg("push.dlq.spring.7")
	want := map[string]string{"Pushworker-Reason": "failed", "Pushworker-Error": "8011: too fast", "Pushworker-Job-Id": "spring.7",
		"Pushworker-Subject": "push.jobs.bulk.spring", "Pushworker-Deliveries": "5", "Nats-Msg-Id": "dlq-spring.7"}
	for k, v := range want {
		if got := m.Header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	if len(m.Header) != len(want) || m.Subject != "push.dlq.spring.7" {
		t.Fatalf("message: %s %v", m.Subject, m.Header)
	}
	back := DecodeDeadLetter(42, at, m.Header, m.Data)
	d.Seq, d.At = 42, at
	if !reflect.DeepEqual(back, d) {
		t.Fatalf("read back %+v, want %+v", back, d)
	}
}

func TestParkedWritesAndReadsBack(t *testing.T) {
	p := Parked{JobID: "spring.7", Subject: "push.jobs.bulk.spring.part2", Seq: 31, Body: []byte("{}")}
	m := p.ParkMsg("push.parked.spring.spring.7")
	if m.Header.Get("Nats-Msg-Id") != "park-31-spring.7" || m.Header.Get("Pushworker-Job-Id") != "spring.7" ||
		m.Header.Get("Pushworker-Subject") != "push.jobs.bulk.spring.part2" || len(m.Header) != 3 {
		t.Fatalf("parked: %v", m.Header)
	}
	back := DecodeParked(9, m.Header, m.Data)
	if back.JobID != "spring.7" || back.Subject != p.Subject || back.Seq != 9 || string(back.Body) != "{}" {
		t.Fatalf("read back %+v", back)
	}
	u := back.UnparkMsg(back.Subject)
	if u.Subject != p.Subject || u.Header.Get("Nats-Msg-Id") != "unpark-9-spring.7" || ParkedAs(u.Header) != "spring.7" || len(u.Header) != 2 {
		t.Fatalf("unparked: %s %v", u.Subject, u.Header)
	}
}
