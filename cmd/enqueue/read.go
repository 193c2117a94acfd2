package main

import (
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/job"
)

// readAll reads every message a stream holds now, in batches, and gives each to f.
func (e *env) readAll(streamName string, f func(jetstream.Msg)) error {
	return e.readNewest(streamName, 0, f)
}

// readNewest reads the messages of the newest n sequences a stream holds now
// (n = 0: all of them), oldest first, and gives each to f.
func (e *env) readNewest(streamName string, n uint64, f func(jetstream.Msg)) error {
	return e.ops.ReadNewest(e.ctx, streamName, n, f)
}

// follow reads the results under filter as a stream, from the start, and gives
// each to take until take says it has all it wants. A timeout or the end of the
// command's context ends it with an error saying which.
func (e *env) follow(filter string, timeout time.Duration, take func(*job.Result) (done bool)) error {
	return e.ops.Follow(e.ctx, filter, timeout, take)
}

var errTimedOut = ops.ErrTimedOut

// printFailedBy prints failed targets by code, in code order.
func (e *env) printFailedBy(indent string, byCode map[string]int) {
	codes := make([]string, 0, len(byCode))
	for c := range byCode {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	for _, c := range codes {
		fmt.Fprintf(e.stdout, "%sfailed with %s: %d\n", indent, c, byCode[c])
	}
}
