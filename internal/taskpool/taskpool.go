// Package taskpool runs short tasks on goroutines that outlive one task.
//
// It imports nothing of this project.
package taskpool

import (
	"sync"
	"time"
)

// Idle is how long an idle goroutine waits for another task before it ends.
const Idle = 10 * time.Second

// Pool runs tasks on goroutines that outlive one task. A goroutine per task had
// to grow its stack to the depth of the task each time (the runtime copies the
// stack at each doubling: the SDK's call path is deep); a pooled one keeps its
// grown stack for the next task. There are never more goroutines than tasks
// running at once, and one that has waited Idle for work ends. Close ends the
// idle ones and waits for all.
type Pool struct {
	work chan func() // unbuffered: a send succeeds only when a goroutine is idle
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New makes an empty pool.
func New() *Pool { return &Pool{work: make(chan func()), quit: make(chan struct{})} }

// Go runs f on an idle goroutine of the pool, or a new one.
func (p *Pool) Go(f func()) {
	select {
	case p.work <- f:
	default:
		p.wg.Add(1)
		go p.loop(f)
	}
}

func (p *Pool) loop(f func()) {
	defer p.wg.Done()
	idle := time.NewTimer(Idle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(Idle)
		select {
		case f = <-p.work:
		case <-idle.C:
			return
		case <-p.quit:
			return
		}
	}
}

// Close ends the goroutines once their tasks are done. After Close, a task
// runs on a goroutine of its own that ends with it.
func (p *Pool) Close() {
	p.once.Do(func() { close(p.quit) })
	p.wg.Wait()
}
