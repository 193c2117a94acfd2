package job

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The bound of PUSH_MAX_TARGETS: the worst result of that many targets fits
// the payload, with room for its headers; one more target's worth would not.
func TestMaxTargetsForFitsTheWorstResult(t *testing.T) {
	for _, payload := range []int{64 << 10, DefaultMaxPayload, 8 << 20} {
		n := MaxTargetsFor(payload)
		b, _ := worstResult(n).Encode()
		if n < 100 || len(b)+resultHeaderBytes > payload {
			t.Fatalf("payload %d: bound %d, its worst result %d bytes", payload, n, len(b))
		}
		if b, _ := worstResult(n + 20).Encode(); len(b)+resultHeaderBytes <= payload {
			t.Fatalf("payload %d: bound %d is not the most (%d+20 targets: %d bytes)", payload, n, n, len(b))
		}
	}
}

// The size MaxTargetsFor works from is the size of the encoded worst result.
func TestWorstResultSizeIsTheEncodedSize(t *testing.T) {
	size := worstResultSize()
	for _, n := range []int{0, 1, 9, 10, 11, 19, 20, 25, 1000, 1234, 8191} {
		if b, _ := worstResult(n).Encode(); size(n) != len(b) {
			t.Fatalf("%d targets: sized %d bytes, encoded %d", n, size(n), len(b))
		}
	}
}

func TestClipBoundsEveryEcho(t *testing.T) {
	for _, s := range []string{"short", strings.Repeat("x", 900<<10), strings.Repeat("\u0085", 307200)} {
		c := Clip(s)
		if len(c) > MaxEchoLine || !utf8.ValidString(c) || len(s) <= MaxEchoLine && c != s {
			t.Fatalf("Clip of %d bytes: %d bytes, valid %v", len(s), len(c), utf8.ValidString(c))
		}
	}
}

func TestTruncateKeepsCountsAndSaysSo(t *testing.T) {
	r := &Result{JobID: "j", TaskName: strings.Repeat("t", 5000)}
	r.AddChunk(ChunkResult{TargetMsgkey: Targets{{"u1", "k"}, {"u2", "k"}}, Status: ChunkSent})
	r.AddSkipped(Target{"u3", "k"})
	r.Finish(r.StartedAt.Time)
	tr := r.Truncate(12345)
	b, _ := tr.Encode()
	if !tr.Truncated || tr.ResultBytes != 12345 || tr.Targets != 3 || tr.Sent != 2 || tr.Duplicates != 1 || tr.Status != StatusSucceeded ||
		len(tr.TaskName) > MaxEchoLine || len(r.Chunks) != 1 || len(r.Skipped) != 1 ||
		!strings.Contains(string(b), `"chunks":[],"skipped":{}`) || !strings.Contains(string(b), `"truncated":true,"resultBytes":12345`) {
		t.Fatalf("truncated: %s", b)
	}
	if b, _ := r.Encode(); strings.Contains(string(b), "truncated") {
		t.Fatalf("a whole result says nothing of truncation: %s", b)
	}
}
