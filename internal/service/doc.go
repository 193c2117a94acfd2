// Package service wires one worker process together from its configuration:
// the connections (or, in dev mode, an embedded NATS server, in-memory stores and
// the mPaaS emulator), the stores, the pipeline, the queue, metrics and the HTTP
// endpoints. cmd/worker parses the configuration and calls Run; the tests start
// workers through New, so that they run what ships.
package service
