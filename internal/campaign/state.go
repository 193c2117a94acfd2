// Package campaign is the control of running campaigns: the state an operator
// sets in the PUSH_CAMPAIGNS key-value bucket (running, paused, canceled, a pace
// in targets per second), the watcher through which every worker sees a change
// within a second, and the pace limiter that holds a campaign's targets per
// second over all workers.
//
// It imports, of this project, only clock, pause, ratelimit, redisbatch, wire, job and topology:
// never the pipeline, the consumer or the worker's wiring.
package campaign

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// The states of a campaign.
const (
	Running  = "running"
	Paused   = "paused"
	Canceled = "canceled"
)

// State is the value under a campaign's key. No key means Running at no pace.
// Reason and Actor are the audit: why, and who made the change, as the writer
// says (enqueue, the console, a business's own service).
type State struct {
	State            string    `json:"state"`
	TargetsPerSecond float64   `json:"targetsPerSecond"`
	Reason           string    `json:"reason,omitempty"`
	Actor            string    `json:"actor,omitempty"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

// MaxValueBytes bounds a control value: a reason or actor is a line, not a file.
const MaxValueBytes = 4096

// ErrInvalid matches every error of Decode and ValidName.
var ErrInvalid = errors.New("invalid campaign control")

// Decode reads a bucket value strictly: a JSON object with a known state, a
// pace that is a finite number ≥ 0, and no unknown field.
func Decode(b []byte) (State, error) {
	if len(b) > MaxValueBytes {
		return State{}, fmt.Errorf("%w: value of %d bytes: at most %d", ErrInvalid, len(b), MaxValueBytes)
	}
	var s State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	switch {
	case s.State != Running && s.State != Paused && s.State != Canceled:
		return State{}, fmt.Errorf("%w: state %q: want running, paused or canceled", ErrInvalid, s.State)
	case s.TargetsPerSecond < 0 || math.IsNaN(s.TargetsPerSecond) || math.IsInf(s.TargetsPerSecond, 0):
		return State{}, fmt.Errorf("%w: targetsPerSecond %v: want a number ≥ 0", ErrInvalid, s.TargetsPerSecond)
	}
	return s, nil
}

// Encode is the bucket value.
func (s State) Encode() []byte {
	b, _ := json.Marshal(s)
	return b
}

// ValidName reports whether name can be a campaign: one subject token of
// letters, digits, '-', '_' or ':' (it is a key of the bucket and a token of
// job, result and parked subjects).
func ValidName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("%w: campaign name %q (%d bytes): 1 to 128 characters", ErrInvalid, clip(name), len(name))
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("-_:", c)) {
			return fmt.Errorf("%w: campaign name %q: letters, digits, '-', '_' or ':' only (one subject token)", ErrInvalid, name)
		}
	}
	return nil
}

// clip is at most 128 bytes of s, for an error that quotes what it was given.
func clip(s string) string {
	if len(s) <= 128 {
		return s
	}
	return strings.ToValidUTF8(s[:128], "") + "…"
}
