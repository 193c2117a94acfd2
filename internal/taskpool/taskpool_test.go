package taskpool_test

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/taskpool"
)

// Tasks one after another reuse one goroutine; tasks at the same time get one
// each; Close waits for the running ones and ends the idle ones.
func TestPool(t *testing.T) {
	before := runtime.NumGoroutine()
	p := taskpool.New()
	var ran atomic.Int64
	for range 100 {
		done := make(chan struct{})
		p.Go(func() { ran.Add(1); close(done) })
		<-done
		time.Sleep(time.Millisecond) // let it go back to waiting
	}
	if n := runtime.NumGoroutine() - before; n > 2 {
		t.Fatalf("%d goroutines for 100 tasks one after another, want one reused", n)
	}
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 8 {
		wg.Add(1)
		p.Go(func() { defer wg.Done(); <-release; ran.Add(1) })
	}
	close(release)
	wg.Wait()
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the idle goroutines")
	}
	if ran.Load() != 108 {
		t.Fatalf("%d tasks ran, want 108", ran.Load())
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine() - before; n > 0 {
		t.Fatalf("%d goroutines left after Close", n)
	}
	// After Close a task still runs, on a goroutine that ends with it.
	done := make(chan struct{})
	p.Go(func() { close(done) })
	<-done
}
