// Command enqueue publishes push jobs to JetStream and inspects the queue:
//
//	enqueue [publish] [--subject S] [--wait] FILE...   publish jobs (a JSON object, or JSON Lines)
//	enqueue broadcast --campaign NAME (flags | FILE) [--yes]   publish a broadcast (PushBroadcast: every device of the app)
//	enqueue load --campaign ID [settings] FILE          load a campaign (CSV or JSON Lines) onto the bulk lane
//	enqueue status                                     jobs waiting and in flight per lane, dead letters, results, orphans
//	enqueue repair [--yes]                             remove the orphaned messages a 2.9 server's crash left
//	enqueue result JOB-ID [--json]                     a job's stored result
//	enqueue console [--addr 127.0.0.1:8090]            the operators' web console
//	enqueue dlq list [--campaign C] [--reason R] [--error TEXT] [--before SEQ]   the dead letters, newest first, a page at a time
//	enqueue dlq replay [--force] [--all | JOB-ID...]   publish the failed targets again
//	enqueue dlq delete SEQ...                          remove dead letters
//	enqueue dlq purge (--campaign C | --error TEXT | --reason R) [--yes]   remove the dead letters that match
//	enqueue campaign list|status|pause|resume|cancel|pace|delete …   control a running campaign
//
// Each subcommand has its own flags (a flag of another is an error). It connects
// to NATS_URL, or to the dev-mode worker's embedded server when unset.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"

	"github.com/mpaas-push/pushworker/internal/dial"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/internal/settings"
	"github.com/mpaas-push/pushworker/internal/tracing"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

const usage = `Usage:
  enqueue [publish] [--subject push.jobs.NAME] [--wait] [--timeout 2m] FILE...
      Publish jobs: each FILE (- for standard input) holds one JSON job or JSON Lines.
      A FILE that starts with '{' and parses whole as one JSON value is one job, over as
      many lines as it likes; one whose first line is a complete JSON object is JSON Lines,
      a job a line. A FILE that starts with '{' and is neither is one job with a syntax
      error, reported once as FILE:LINE:COLUMN.
      Jobs are validated first; a job without jobId gets one. Nats-Msg-Id = jobId.
      --wait prints each job's result and exits 1 unless every job succeeded.
  enqueue broadcast --campaign NAME --app-id ID --workspace-id ID --template NAME [--values JSON]
                    --msg-key KEY --delivery-type 1|2|7 [--expired-seconds 86400] [--task-name …]
                    [--push-status 0|1|2] [--job-id ID] [--yes] [--wait] [--timeout 2m]
  enqueue broadcast --campaign NAME [--yes] [--wait] FILE
      Publish a broadcast (PushBroadcast: every device of the app, one call) on the campaign's
      bulk lane, built from the flags or read from FILE (one JSON job with a "broadcast" object).
      It goes out at most once per msgKey; the job id derives from the app, workspace and msgKey
      unless --job-id. It shows the broadcast and asks on a terminal; without one it needs --yes.
      "enqueue revoke --campaign NAME" takes it back (RevokePushTask).
  enqueue load --campaign ID [--api auto|multiple|template] [--settings campaign.json]
               [--app-id …] [--workspace-id …] [--template …] [--delivery-type N]
               [--expired-seconds N] [--task-name …] [--group-size 1000] [--window 20000]
               [--rejects FILE] [--strict] [--dry-run] [--wait] [--timeout 2m] FILE
      Load a campaign onto the bulk lane (push.jobs.bulk.ID). A CSV file has a header row:
      "target", optionally "msgKey" (derived from the campaign and the target when absent),
      and one column per template variable. --api multiple makes targetMsgs jobs (PushMultiple,
      100 targets a call, each row its own values); template groups rows with the same values
      into targetMsgkey jobs (PushTemplate, 10 a call); auto (the default) takes multiple unless
      the settings need PushTemplate (SMS fallback, deliveryType 5 or 6) and says why. A job holds
      up to --group-size targets and fits the server's max_payload. A .jsonl file holds whole
      jobs. Job ids derive from the campaign, the line and the job's content, so a rerun
      enqueues nothing new and another file of the campaign loads its own jobs. Bad rows go to
      --rejects with their line. --wait follows the campaign's results and prints the totals.
  enqueue status [--json]
      Jobs waiting and in flight per lane, redeliveries, dead letters, results, and orphans:
      messages a lane's consumer has acknowledged that the job stream still holds.
  enqueue repair [--yes] [--json]
      Show the orphaned messages of the job stream (lane, sequence, subject, job id, whether its
      result is kept), ask, and remove them. A crash of nats-server 2.9 can leave them behind.
  enqueue result JOB-ID [--json]
      A job's stored result: status, targets sent, duplicates and failed, and each call with its
      mPaaS code; --json prints the result as stored. It looks under push.results.JOB-ID, then a
      campaign's push.results.CAMPAIGN.JOB-ID, then among the newest 10,000 results (a job with a
      replyTo of its own). None kept: said, exit 1.
  enqueue console [--addr 127.0.0.1:8090]
      A web console: lanes, workers, campaigns (progress, rate, buttons for pause, resume, cancel,
      pace and revoke), dead letters (one letter, replay) and results by job id; it updates itself.
      On loopback it needs no token; anywhere else CONSOLE_TOKEN or CONSOLE_TOKEN_FILE, which every
      request must carry (Authorization: Bearer, or open /?token=… once to set a cookie).
  enqueue dlq list [--campaign C] [--reason R] [--error TEXT] [--limit 50] [--before SEQ] [--json]
      The dead letters, newest first, a page at a time: sequence, job id, reason, targets,
      deliveries, whether dlq replay takes it, error. --before SEQ is the next page (the last
      page says which). Filters combine; a filtered page looks at 20,000 letters at most.
  enqueue dlq replay [--force] [--all | JOB-ID...]
      Publish the failed targets of dead letters again, as new jobs whose ids are
      derived from the old ones, and remove those dead letters. A rejected job is never
      replayed; a canceled campaign's letter (its state is canceled, or its error is
      "campaign canceled") only with --force.
  enqueue dlq delete SEQ...
      Remove the dead letters at these sequences.
  enqueue dlq purge (--campaign C | --error TEXT | --reason R) [--yes]
      Remove every dead letter that matches; asks on a terminal, and needs --yes without one.
  enqueue revoke (--campaign NAME | JOB-ID...) [--dry-run] [--timeout 10m]
      Take back what the stored results say was sent now: PushTemplate and PushSimple pairs
      (RevokePushMessage), PushMultiple and PushBroadcast tasks (RevokePushTask), as admin jobs the
      workers run under the rate limit.
      A chunk with strategyType 1 or 2 was scheduled: revoke leaves it to "scheduled cancel"
      (never judged by the form of its id; results stored before chunks carried strategyType
      read as not scheduled). mPaaS revokes only pushes of the last 7 days; older ones fail
      with its code, counted. It prints its plan first (admin jobs, calls by action, per app,
      workspace and campaign); --dry-run stops there. Nothing to take back: said, exit 1.
      Exit 1 also when a call failed.
  enqueue scheduled cancel (--campaign NAME | JOB-ID...) [--dry-run] [--timeout 10m]
      Cancel the scheduled tasks that have not run (CancelPushScheduler): the data of the chunks
      whose strategyType was 1 or 2. Plan, --dry-run and exit statuses as for revoke.
  enqueue scheduled list [--app-id ID --workspace-id ID] [--json]
      The pending scheduled tasks, asked of a worker (QueryPushSchedulerList); without the ids,
      of every app with scheduled pushes among the stored results.
  enqueue campaign list [--json]
      Every campaign seen (with totals, a state, or jobs queued or parked): state, pace, jobs
      done of all, targets sent and failed, parked jobs, last change.
  enqueue campaign status NAME [--watch] [--json]
      Jobs queued, in flight, parked and done; targets sent, duplicates, failed by mPaaS
      code; a recall's calls apart; targets per second now and the time left at that rate;
      the last changes of its state (who, why). --watch redraws it with a progress bar until
      the campaign is done, then exits 0, or 1 if anything failed or the campaign is gone.
  enqueue campaign report NAME [--json]
      What mPaaS counted of the campaign's pushes, fetched by a worker: pushed, arrived and opened
      with their rates, and the time fetched; "not ready yet" while mPaaS has no figures. Push
      tasks (PushMultiple) are summed; PushTemplate pushes are the app's figures over the
      campaign's first-to-last-call window, other pushes of that type meanwhile included.
  enqueue campaign pause NAME [--reason TEXT] [--actor WHO] [--create]
      Within a second no new call of the campaign starts; the workers park its jobs in
      PUSH_PARKED (no delivery spent); other campaigns and events go on.
  enqueue campaign resume NAME [--reason TEXT] [--actor WHO] [--wait 10s]
      The workers move the parked jobs back on the job stream (what they had sent counts as
      sent); the command watches them do it for up to --wait.
  enqueue campaign cancel NAME [--reason TEXT] [--actor WHO] [--wait 10s]
      Nothing more is sent: its jobs (in hand, parked, queued) end with status canceled, with no
      dead letter. A canceled campaign stays canceled until "enqueue campaign delete NAME".
  enqueue campaign pace NAME TARGETS-PER-SECOND [--actor WHO] [--create]
      Hold the campaign's targets per second over all workers (0: no pace of its own).
  enqueue campaign delete NAME [--wait 10s]
      Remove the campaign's state: it runs again, at no pace of its own (parked jobs too).
  A campaign that never ran (nothing queued, parked or done, no state) is named, exit 1;
  pause and pace take --create to set its state before it is loaded.
  The workers carry out every change, whoever writes PUSH_CAMPAIGNS (the nats CLI too).

Every subcommand also takes the connection settings (environment or flags):
NATS_URL (--nats-url, default the dev-mode worker's server), NATS_CREDS, NATS_NKEY_SEED_FILE,
NATS_USER with NATS_PASSWORD, NATS_TOKEN, NATS_CA, NATS_CERT and NATS_KEY. "enqueue CMD --help"
lists a subcommand's flags.
`

// exitError carries an exit status without printing more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// usageError is a wrong command line: printed, exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

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
	topo   topology.Topology
	ops    *ops.Ops // the operations library, over nc
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// command is one parsed subcommand: what it does with the arguments left after
// its flags, and whether it needs no NATS connection (a dry run).
type command struct {
	run     func(e *env, args []string) error
	offline *bool
}

// subcommands add their own flags to a FlagSet of their own (see each one's file).
var subcommands = map[string]func(fs *flag.FlagSet) command{
	"publish":    publishFlags,
	"broadcast":  broadcastFlags,
	"load":       loadFlagSet,
	"status":     statusFlags,
	"repair":     repairFlags,
	"result":     resultFlags,
	"console":    consoleFlags,
	"dlq list":   dlqListFlags,
	"dlq replay": dlqReplayFlags,
	"dlq delete": dlqDeleteFlags,
	"dlq purge":  dlqPurgeFlags,

	"revoke":           recallFlags(job.ActionRevoke),
	"scheduled cancel": recallFlags(job.ActionCancelScheduled),
	"scheduled list":   scheduledListFlags,
}

// campaignVerbs are the subcommands of enqueue campaign.
var campaignVerbs = []string{"list", "status", "pause", "resume", "cancel", "pace", "delete"}

func init() {
	for _, v := range campaignVerbs {
		subcommands["campaign "+v] = campaignVerb(v)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	name := "publish"
	if len(args) > 0 {
		switch args[0] {
		case "publish", "broadcast", "status", "repair", "result", "console", "load", "revoke":
			name, args = args[0], args[1:]
		case "dlq", "campaign", "scheduled":
			if len(args) < 2 || subcommands[args[0]+" "+args[1]] == nil {
				fmt.Fprint(stderr, usage)
				return exitError{2}
			}
			name, args = args[0]+" "+args[1], args[2:]
		case "-h", "--help", "help":
			fmt.Fprint(stdout, usage)
			return nil
		}
	}
	fs := flag.NewFlagSet("enqueue "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cmd := subcommands[name](fs)
	var conn dial.NATSConfig
	var table settings.Table
	settings.NATSSettings(&table, &conn, settings.DevNATSURL, "NATS server URLs, comma-separated (default: the dev-mode worker's server)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage of enqueue %s (see enqueue --help):\n", name)
		fs.PrintDefaults()
	}
	if strings.HasPrefix(name, "campaign ") || name == "result" {
		args = flagsFirst(fs, args) // campaign status NAME --watch and result JOB-ID --json read as written
	}
	if err := table.ParseFlags(fs, args, getenv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return exitError{2} // the flag package has said what is wrong
	}
	// Publishes are spans of a trace of their own when the OTEL_* variables ask
	// for an exporter; the jobs carry it to the workers either way.
	tp, shutdown, err := tracing.Setup(ctx, "enqueue", getenv)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}()
	otel.SetTracerProvider(tp)
	e := &env{ctx: ctx, topo: topology.Default(), stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	if cmd.offline == nil || !*cmd.offline {
		nc, err := connectNATS(conn, getenv("NATS_URL") == "")
		if err != nil {
			return err
		}
		defer nc.Close()
		if e.js, err = jetstream.New(nc); err != nil {
			return err
		}
		e.nc = nc
		if e.ops, err = ops.New(nc, e.topo); err != nil {
			return err
		}
	}
	err = cmd.run(e, fs.Args())
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "enqueue %s: %s\n", name, ue.msg)
		return exitError{2}
	}
	return err
}

// flagsFirst moves the flags of args before the other arguments, so that flags
// may follow a name. A flag that takes a value keeps it; "--" ends the flags.
func flagsFirst(fs *flag.FlagSet, args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if _, err := strconv.ParseFloat(a, 64); err == nil || !strings.HasPrefix(a, "-") || a == "-" {
			rest = append(rest, a) // a name, "-", or a number such as -5 (which the command then refuses)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil {
			if b, ok := f.Value.(interface{ IsBoolFlag() bool }); (!ok || !b.IsBoolFlag()) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		}
	}
	return append(flags, rest...)
}

// connectNATS connects to NATS, or explains how to start the dev worker.
func connectNATS(c dial.NATSConfig, devDefault bool) (*nats.Conn, error) {
	opts, err := dial.NATSOptions(c)
	if err != nil {
		return nil, err
	}
	opts = append(opts, nats.MaxReconnects(5))
	nc, err := dial.NATS(c.URL, opts)
	if err != nil && devDefault {
		return nil, fmt.Errorf("%w\n(NATS_URL is unset, so enqueue tried the dev-mode worker at %s: start it with 'go run ./cmd/worker', or set NATS_URL)", err, settings.DevNATSURL)
	}
	return nc, err
}
