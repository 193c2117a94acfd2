// Command enqueue publishes push jobs to JetStream and inspects the queue:
//
//	enqueue [publish] [--subject S] [--wait] FILE...   publish jobs (a JSON object, or JSON Lines)
//	enqueue load --campaign ID [settings] FILE          load a campaign (CSV or JSON Lines) onto the bulk lane
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
	"github.com/mpaas-push/pushworker/job"
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
  enqueue load --campaign ID [--settings campaign.json] [--app-id …] [--workspace-id …]
               [--template …] [--delivery-type N] [--expired-seconds N] [--task-name …]
               [--group-size 1000] [--window 20000] [--rejects FILE] [--strict] [--dry-run]
               [--wait] [--timeout 2m] FILE
      Load a campaign onto the bulk lane (push.jobs.bulk.ID). A CSV file has a header row:
      "target", optionally "msgKey" (derived from the campaign and the target when absent),
      and one column per template variable; rows with the same template values become jobs
      of up to --group-size targets. A .jsonl file holds whole jobs. Job ids derive from the
      campaign, so a rerun enqueues nothing new. Bad rows go to --rejects with their line.
      --wait follows the campaign's results and prints the totals.
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
		case "publish", "status", "dlq", "load":
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
		lf      loadFlags
	)
	fs.StringVar(&lf.campaign, "campaign", "", "load: campaign id (starts every job id)")
	fs.StringVar(&lf.settings, "settings", "", "load: campaign settings, a JSON job without targets")
	fs.StringVar(&lf.format, "format", "", "load: csv or jsonl (default: from the file name; csv for -)")
	fs.StringVar(&lf.rejects, "rejects", "", "load: write bad rows (line, reason) to this CSV file")
	fs.StringVar(&lf.appID, "app-id", "", "load: appId")
	fs.StringVar(&lf.workspaceID, "workspace-id", "", "load: workspaceId")
	fs.StringVar(&lf.template, "template", "", "load: templateName")
	fs.StringVar(&lf.taskName, "task-name", "", "load: taskName (default: the campaign id)")
	fs.Int64Var(&lf.deliveryType, "delivery-type", 0, "load: deliveryType")
	fs.Int64Var(&lf.expiredSeconds, "expired-seconds", 0, "load: expiredSeconds")
	fs.IntVar(&lf.groupSize, "group-size", 1000, "load: targets per job")
	fs.IntVar(&lf.window, "window", 20000, "load: rows held in open groups at most (bounds memory)")
	fs.IntVar(&lf.maxTargets, "max-targets", job.DefaultMaxTargets, "load: the workers' per-job target cap")
	fs.BoolVar(&lf.strict, "strict", false, "load: stop at the first bad row")
	fs.BoolVar(&lf.dryRun, "dry-run", false, "load: validate the whole file, publish nothing")
	fs.StringVar(&lf.cpuProfile, "cpuprofile", "", "load: write a CPU profile to this file (diagnostics)")
	fs.IntVar(&lf.memLimitMiB, "mem-limit", 80, "load: soft memory limit in MiB (the Go runtime's GOMEMLIMIT); 0: none")
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
	e := &env{ctx: ctx, topo: consumer.DefaultTopology(), stdin: stdin, stdout: stdout, stderr: stderr}
	if !(cmd == "load" && lf.dryRun) { // a dry run validates the file alone
		nc, err := dial(cfg, getenv)
		if err != nil {
			return err
		}
		defer nc.Close()
		if e.js, err = jetstream.New(nc); err != nil {
			return err
		}
		e.nc = nc
	}
	switch {
	case cmd == "status":
		return e.status(*asJSON)
	case cmd == "dlq" && sub == "list":
		return e.dlqList(*asJSON)
	case cmd == "dlq" && sub == "replay":
		return e.dlqReplay(*all, fs.Args())
	case cmd == "load":
		if fs.NArg() != 1 || lf.campaign == "" {
			fmt.Fprint(stderr, usage)
			return exitError{2}
		}
		return e.load(&lf, fs.Arg(0), *wait, *timeout)
	default:
		if fs.NArg() == 0 {
			fmt.Fprint(stderr, usage)
			return exitError{2}
		}
		return e.publish(*subject, fs.Args(), *wait, *timeout)
	}
}

// dial connects to NATS_URL, or explains how to start the dev worker.
func dial(cfg *config.Set, getenv func(string) string) (*nats.Conn, error) {
	opts, err := connect.NATSOptions(cfg, getenv)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.MaxReconnects(5))
	nc, err := connect.NATS(cfg.String("NATS_URL"), opts)
	if err != nil && getenv("NATS_URL") == "" {
		return nil, fmt.Errorf("%w\n(NATS_URL is unset, so enqueue tried the dev-mode worker at %s: start it with 'go run ./cmd/worker', or set NATS_URL)", err, devNATSURL)
	}
	return nc, err
}
