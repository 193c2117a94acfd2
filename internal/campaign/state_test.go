package campaign

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeIsStrict(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{`{"state":"paused","targetsPerSecond":0,"reason":"night","updatedAt":"2026-12-01T10:00:00Z"}`, ""},
		{`{"state":"running","targetsPerSecond":500,"updatedAt":"2026-12-01T10:00:00Z"}`, ""},
		{`{"state":"stopped"}`, `state "stopped"`},
		{`{"state":"paused","targetsPerSecond":-1}`, "targetsPerSecond -1"},
		{`{"state":"paused","speed":1}`, `unknown field "speed"`},
		{`paused`, "invalid"},
	} {
		s, err := Decode([]byte(c.in))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.err != "" && (err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: want an error saying %q, got %v", c.in, c.err, err)
		case c.err == "" && roundTrip(t, s) != s:
			t.Errorf("%s: a round trip changed it", c.in)
		}
	}
}

// roundTrip encodes and decodes s again.
func roundTrip(t *testing.T, s State) State {
	t.Helper()
	back, err := Decode(s.Encode())
	if err != nil {
		t.Fatal(err)
	}
	return back
}

func TestValidName(t *testing.T) {
	for name, ok := range map[string]bool{"spring-2026": true, "a_b:c": true, "a.b": false, "": false, "a b": false, "*": false, "春": false} {
		if got := ValidName(name) == nil; got != ok {
			t.Errorf("ValidName(%q) = %v", name, got)
		}
	}
}

// A paced call carries a twentieth of a second's targets at most, so that no
// one-second window sees more than 1.05 × the pace.
func TestCallSize(t *testing.T) {
	for _, c := range []struct {
		pace      float64
		job, want int
	}{{0, 100, 100}, {500, 100, 25}, {5000, 100, 100}, {5000, 10, 10}, {3, 100, 1}, {0.5, 10, 1}} {
		if got := CallSize(c.pace, c.job); got != c.want {
			t.Errorf("CallSize(%v, %d) = %d, want %d", c.pace, c.job, got, c.want)
		}
	}
}

// The audit fields of the contract are taken, and a value too big to be a
// state is refused without being read.
func TestDecodeTakesTheAudit(t *testing.T) {
	s, err := Decode([]byte(`{"state":"paused","targetsPerSecond":0,"reason":"complaints","actor":"ops-admin-service","updatedAt":"2026-12-06T08:00:00Z"}`))
	if err != nil || s.Actor != "ops-admin-service" || s.Reason != "complaints" || s.State != Paused {
		t.Fatalf("%+v, %v", s, err)
	}
	big := []byte(`{"state":"paused","reason":"` + strings.Repeat("x", MaxValueBytes) + `"}`)
	if _, err := Decode(big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("a value over %d bytes: %v", MaxValueBytes, err)
	}
	if err := ValidName(strings.Repeat("n", 100000)); err == nil || len(err.Error()) > 400 {
		t.Fatalf("a long name's error quotes at most a few hundred bytes: %d bytes", len(err.Error()))
	}
}
