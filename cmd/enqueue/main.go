// Command enqueue publishes push jobs to JetStream and inspects the queue:
//
//	enqueue [publish] [--subject S] [--wait] FILE...   publish jobs (a JSON object, or JSON Lines)
//	enqueue status                                     jobs waiting and in flight per lane, dead letters, results
//	enqueue dlq list                                   the dead letters
//	enqueue dlq replay [--all | JOB-ID...]             publish the failed targets again
//
// It connects to NATS_URL, or to the dev-mode worker's embedded server when unset.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/connect"
	"github.com/mpaas-push/pushworker/internal/consumer"
)

// devNATSURL is the dev-mode worker's embedded server (cmd/worker's DevNATSPort).
const devNATSURL = "nats://127.0.0.1:14222"

var settings = append([]config.Setting{
	{Group: "Connection", Env: "NATS_URL", Flag: "nats-url", Default: devNATSURL, Help: "NATS server URLs, comma-separated (default: the dev-mode worker's server)"},
}, connect.NATSSettings...)

const usage = `Usage:
  enqueue [publish] [--subject push.jobs.NAME] [--wait] [--timeout 2m] FILE...
      Publish jobs: each FILE (- for standard input) holds one JSON job or JSON Lines.
      Jobs are validated first; a job without jobId gets one. Nats-Msg-Id = jobId.
      --wait prints each job's result and exits 1 unless every job succeeded.
  enqueue status [--json]
      Jobs waiting and in flight per lane, redeliveries, dead letters, results.
  enqueue dlq list [--json]
      The dead letters: job id, reason, error, targets.
  enqueue dlq replay [--all | JOB-ID...]
      Publish the failed targets of dead letters again, as new jobs whose ids are
      derived from the old ones, and remove those dead letters.
`

// exitError carries an exit status without printing more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	var ee exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &ee):
		os.Exit(ee.code)
	default:
		fmt.Fprintln(os.Stderr, "enqueue:", err)
		os.Exit(2)
	}
}

// env is what a subcommand works with.
type env struct {
	ctx    context.Context
	nc     *nats.Conn
	js     jetstream.JetStream
	topo   consumer.Topology
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "publish"
	if len(args) > 0 {
		switch args[0] {
		case "publish", "status", "dlq":
			cmd, args = args[0], args[1:]
		case "-h", "--help", "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	sub := ""
	if cmd == "dlq" {
		if len(args) == 0 || (args[0] != "list" && args[0] != "replay") {
			fmt.Fprint(stderr, usage)
			return exitError{2}
		}
		sub, args = args[0], args[1:]
	}
	cfg := config.NewSet(settings)
	fs := flag.NewFlagSet("enqueue "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		subject = fs.String("subject", "push.jobs.default", "publish: subject of the jobs (push.jobs.NAME or push.jobs.bulk.NAME…)")
		wait    = fs.Bool("wait", false, "publish: wait for every job's result and print it")
		timeout = fs.Duration("timeout", 2*time.Minute, "publish --wait: how long to wait for the results")
		asJSON  = fs.Bool("json", false, "status, dlq list: print JSON")
		all     = fs.Bool("all", false, "dlq replay: replay every dead letter that can be replayed")
	)
	for _, st := range settings {
		if st.Flag != "" {
			fs.String(st.Flag, "", st.Help)
		}
	}
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	// The connection flags go through the settings table (flags win over the environment).
	var connArgs []string
	fs.Visit(func(f *flag.Flag) {
		for _, st := range settings {
			if st.Flag == f.Name {
				connArgs = append(connArgs, "--"+f.Name+"="+f.Value.String())
			}
		}
	})
	if err := cfg.Parse("enqueue", connArgs, getenv, usage, stderr); err != nil {
		return err
	}
	opts, err := connect.NATSOptions(cfg, getenv)
	if err != nil {
		return err
	}
	opts = append(opts, nats.MaxReconnects(5))
	nc, err := connect.NATS(cfg.String("NATS_URL"), opts)
	if err != nil {
		if getenv("NATS_URL") == "" {
			return fmt.Errorf("%w\n(NATS_URL is unset, so enqueue tried the dev-mode worker at %s: start it with 'go run ./cmd/worker', or set NATS_URL)", err, devNATSURL)
		}
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	e := &env{ctx: ctx, nc: nc, js: js, topo: consumer.DefaultTopology(), stdin: stdin, stdout: stdout, stderr: stderr}
	switch {
	case cmd == "status":
		return e.status(*asJSON)
	case cmd == "dlq" && sub == "list":
		return e.dlqList(*asJSON)
	case cmd == "dlq" && sub == "replay":
		return e.dlqReplay(*all, fs.Args())
	default:
		if fs.NArg() == 0 {
			fmt.Fprint(stderr, usage)
			return exitError{2}
		}
		return e.publish(*subject, fs.Args(), *wait, *timeout)
	}
}
