package consumer

import (
	"context"
	"testing"
	"time"
)

func held(n, capacity int) chan struct{} {
	slots := make(chan struct{}, capacity)
	for range n {
		slots <- struct{}{}
	}
	return slots
}

// A bulk fetch takes up to half the lane's slots: the free ones at once, and
// those that free up within gatherFor.
func TestGatherSlots(t *testing.T) {
	ctx := context.Background()
	if got := gatherSlots(ctx, held(1, 8), 1); got != 3 {
		t.Fatalf("7 free slots, holding 1: took %d more, want 3 (half of 8)", got)
	}
	if got := gatherSlots(ctx, held(4, 8), 4); got != 0 {
		t.Fatalf("holding half: took %d more, want none", got)
	}
	// One slot free: taken, then no more than gatherFor of waiting for others.
	start := time.Now()
	if got := gatherSlots(ctx, held(7, 8), 1); got != 1 {
		t.Fatalf("took %d, want the one free", got)
	}
	if waited := time.Since(start); waited < gatherFor {
		t.Fatalf("returned after %v, before gatherFor with fewer than half", waited)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if got := gatherSlots(cctx, held(8, 8), 1); got != 0 {
		t.Fatalf("a stopped worker took %d", got)
	}
}
