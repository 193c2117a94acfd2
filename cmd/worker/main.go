// Command worker pulls push jobs from NATS JetStream and sends them through
// mPaaS. With nothing configured it runs in dev mode: an embedded JetStream
// server, in-memory dedupe and rate limit, and the built-in mPaaS emulator.
package main

import (
	"context"
	"io"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/mpaas-push/pushworker/internal/cmdmain"
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/worker"
)

var usage = `Usage: worker [flags]

Pulls push jobs from NATS JetStream (push.jobs.* and push.jobs.bulk.>) and sends each
through mPaaS with the action the job asks for: PushTemplate in calls of at most 10
targets (targetMsgkey), PushMultiple in calls of at most 100 (targetMsgs), and the
recall actions of admin jobs. It never pushes the same (appId, workspaceId, target,
msgKey) twice, holds one rate limit shared by every worker on the same Redis, and
publishes one result per job on push.results.> (or the job's replyTo).

With nothing set it runs in dev mode: an embedded JetStream server on
127.0.0.1:` + devPort + `, in-memory dedupe and rate limit, and the built-in mPaaS
emulator, which accepts any template. Every setting is an environment variable; most
are also flags, which win over the environment.
`

var devPort = strconv.Itoa(config.DefaultDevNATSPort)

// DefaultGOGC is the worker's GC target unless GOGC is set. Its garbage is
// short-lived (requests to mPaaS, their answers, Redis commands) and its live
// heap small, so the collector at Go's default of 100 ran often for little: at
// 400 it costs about a fifth of the CPU per call less for some MB more of
// peak memory (measured with pushbench; docs/performance.md has the figures).
const DefaultGOGC = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGOGC)
	}
	cmdmain.Main("worker", run)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.ParseWorker(args, getenv, usage, stderr)
	if err != nil {
		return err
	}
	s, err := worker.New(ctx, cfg, worker.Options{Log: stdout})
	if err != nil {
		return err
	}
	defer s.Close()
	s.Run(ctx)
	return nil
}
