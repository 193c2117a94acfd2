package job

import (
	"strconv"
	"strings"
	"time"
)

// The sizes a result is planned for: a target and a msgKey each up to
// SizingPairBytes, and mPaaS's answer fields at their longest seen. A job
// whose targets are longer can have a result over the bound; it is then stored
// truncated (Result.Truncate) rather than lost.
const (
	SizingPairBytes = 64
	// DefaultMaxPayload is the NATS server's default max_payload (1 MiB).
	DefaultMaxPayload = 1 << 20
	// resultHeaderBytes is room for the result message's headers (Nats-Msg-Id,
	// trace context) and the protocol's own framing.
	resultHeaderBytes = 1024
)

// worstResult is the biggest result of n targets under the sizing assumptions:
// every chunk a failed PushTemplate call of 10 (the most chunks per target),
// each with a full mPaaS answer and an error at its clip.
func worstResult(n int) *Result {
	pad := func(c byte, k int) string { return strings.Repeat(string(c), k) }
	at := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := &Result{JobID: pad('j', 128), Status: StatusPartial, Error: pad('e', MaxEchoLine), AppID: pad('a', MaxEchoLine),
		WorkspaceID: pad('w', MaxEchoLine), TaskName: pad('t', MaxEchoLine), API: APIMultiple, Campaign: pad('c', MaxEchoLine),
		Deliveries: 99, StartedAt: Time{at}, FinishedAt: Time{at}, TraceID: pad('0', 32)}
	for i := 0; i < n; i += MaxTargetsPerCall {
		c := ChunkResult{Status: ChunkFailed, Attempts: 99, RequestID: pad('r', 36), ResultCode: "FLOW_CONTROL_ERROR",
			ResultMessage: pad('m', 256), Data: pad('d', 32), Error: pad('e', MaxEchoLine), StrategyType: 2}
		for k := i; k < min(n, i+MaxTargetsPerCall); k++ {
			c.TargetMsgkey = append(c.TargetMsgkey, Target{Target: pad('u', SizingPairBytes), MsgKey: pad('k', SizingPairBytes)})
		}
		r.AddChunk(c)
	}
	r.Targets = n
	return r
}

// MaxTargetsFor is the most targets per job whose result, at the sizing
// assumptions, fits a message of maxPayload bytes (the NATS server's
// max_payload): the bound of PUSH_MAX_TARGETS.
func MaxTargetsFor(maxPayload int) int {
	size := worstResultSize()
	const sample = 1000
	fixed := size(0)
	perTarget := (size(sample) - fixed) / sample
	n := max(0, (maxPayload-resultHeaderBytes-fixed)/perTarget)
	for n > 0 && size(n)+resultHeaderBytes > maxPayload { // a last, partial chunk costs a whole chunk's answer
		n -= MaxTargetsPerCall
	}
	return max(0, n)
}

// worstResultSize returns the encoded size of worstResult(n) from the sizes of
// a few small results, not by encoding a result of n targets (a megabyte each,
// which grew the worker's heap at every start): every full chunk after the
// first adds the same bytes, and a last partial chunk of k targets adds what it
// adds after one full chunk.
func worstResultSize() func(n int) int {
	encoded := func(n int) int {
		b, _ := worstResult(n).Encode()
		return len(b)
	}
	one, two := encoded(MaxTargetsPerCall), encoded(2*MaxTargetsPerCall)
	var small [MaxTargetsPerCall]int   // small[k]: worstResult(k)
	var partial [MaxTargetsPerCall]int // partial[k]: what a last chunk of k adds after a full one
	for k := range MaxTargetsPerCall {
		small[k] = encoded(k)
		if k > 0 {
			partial[k] = encoded(MaxTargetsPerCall+k) - one
		}
	}
	chunks := func(n int) int {
		full, k := n/MaxTargetsPerCall, n%MaxTargetsPerCall
		return one + (full-1)*(two-one) + partial[k]
	}
	// The counts of targets are written in digits: each digit more than the
	// two of the results above adds one byte per count.
	const hundred = 10 * MaxTargetsPerCall
	counts := encoded(hundred) - chunks(hundred)
	return func(n int) int {
		if n < MaxTargetsPerCall {
			return small[n]
		}
		return chunks(n) + counts*(len(strconv.Itoa(n))-2)
	}
}
