// Package worker wires one worker process together from its configuration.
// It is the only package that knows every part of the worker; cmd/worker parses
// the configuration and calls New and Run, and the tests start workers through
// New (internal/teststack), so that they run what ships.
//
// New makes the parts in order, each with one constructor call: the logger, the
// mPaaS client (in dev mode, the built-in emulator), the NATS connection (in
// dev mode, an embedded server), the stores (dedupe, the shared rate limit, the
// campaigns' paces and totals: on Redis under config.RedisKeys' layout, or in
// memory), tracing, the parts' configurations (Options.Tune adjusts them), the
// HTTP endpoints (/metrics, /healthz, /readyz, which answer from then on), the
// campaign control bucket and its watcher, the unparker, the pipeline, the
// consumer with its streams, and the NATS service. Run runs the consumer, and
// beside it each side part, all of one shape, Run(ctx), which returns when its
// context ends:
//
//   - the Redis and NATS monitor (monitor.go), which stops with Run's context;
//   - what jobs need, which stops only after the consumer has: the limiter's
//     dispenser, the campaign watcher, the unparker, the lane-backlog watcher
//     (lanes.go), and the NATS service (endpoints.go), through which every
//     request the worker answers comes: its stats, campaign status, the
//     scheduled-task list and the delivery reports.
//
// Close releases what New opened, newest first.
//
// It owns the order of start and stop, the dev mode's stand-ins, and which
// client, shared limiter and retry policy every mPaaS call goes through: the
// pipeline's pushes and recalls, and the scheduled list (scheduled.go) and the
// delivery reports (report.go) with the same ones (adminCalls). It owns no Redis key (config.RedisKeys does) and no subject
// (topology does).
//
// What may import what: no part of the worker imports this package; only
// commands (cmd/...) and the test harness (internal/teststack) do, and tests. It
// imports the parts, and none of the operators' side (internal/ops,
// internal/loader, internal/cmdmain) nor anything made for tests (internal/teststack,
// internal/testenv, internal/chaos). TestImports holds both rules.
package worker
