package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/mpaas-push/pushworker/job"
)

// broadcastFlags builds a broadcast job (PushBroadcast: every device of the
// app) from flags or from one JSON FILE, asks on a terminal (--yes without
// one), and publishes it on its campaign's bulk lane, so that "enqueue revoke
// --campaign NAME" takes it back.
func broadcastFlags(fs *flag.FlagSet) command {
	campaign := fs.String("campaign", "", "the campaign: the job goes to push.jobs.bulk.NAME (required)")
	var j job.Job
	var b job.Broadcast
	fs.StringVar(&j.AppID, "app-id", "", "appId")
	fs.StringVar(&j.WorkspaceID, "workspace-id", "", "workspaceId")
	fs.StringVar(&j.TemplateName, "template", "", "templateName")
	values := fs.String("values", "", `templateKeyValue, a JSON object ({"version":"2.0"})`)
	fs.StringVar(&b.MsgKey, "msg-key", "", "the broadcast's msgKey: it goes out at most once under it")
	fs.Int64Var(&j.DeliveryType, "delivery-type", 0, "deliveryType: 1 Android, 2 iOS, 7 HarmonyOS (required)")
	fs.Int64Var(&j.ExpiredSeconds, "expired-seconds", 86400, "expiredSeconds")
	fs.StringVar(&j.TaskName, "task-name", "", `taskName (default "broadcast MSG-KEY")`)
	pushStatus := fs.Int64("push-status", -1, "pushStatus: 0 bound devices, 1 all, 2 unbound (default: not sent)")
	jobID := fs.String("job-id", "", "jobId (default: derived from the app, workspace and msgKey, so that publishing it again is dropped)")
	yes := fs.Bool("yes", false, "publish without asking (needed without a terminal)")
	wait := fs.Bool("wait", false, "wait for the result and print it")
	timeout := fs.Duration("timeout", 2*time.Minute, "with --wait: how long to wait for the result")
	return command{run: func(e *env, args []string) error {
		if *campaign == "" {
			return usageError{"name the broadcast's campaign: --campaign NAME"}
		}
		if len(args) > 1 {
			return usageError{fmt.Sprintf("unexpected argument %q: give the job's flags or one FILE", clipArg(args[1]))}
		}
		var bc *job.Job
		if len(args) == 1 {
			if jobFlagsSet(fs) {
				return usageError{"give the job's flags or a FILE, not both"}
			}
			jobs, bad := e.readJobs(args)
			if bad > 0 || len(jobs) != 1 {
				return usageError{fmt.Sprintf("%s: want one valid broadcast job", clipArg(args[0]))}
			}
			bc = jobs[0]
		} else {
			bc = &j
			bc.Broadcast = &b
			if *pushStatus >= 0 {
				b.PushStatus = job.Int64(*pushStatus)
			}
			if bc.TaskName == "" {
				bc.TaskName = "broadcast " + b.MsgKey
			}
			if *values != "" {
				if err := bc.TemplateKeyValue.UnmarshalJSON([]byte(*values)); err != nil {
					return usageError{"--values: want a JSON object of the template's values"}
				}
			}
			bc.JobID = *jobID
			if bc.JobID == "" {
				bc.JobID = broadcastJobID(bc)
			}
			if err := bc.Validate(job.Rules{Topology: e.topo}); err != nil {
				return usageError{err.Error()}
			}
		}
		if !bc.IsBroadcast() {
			return usageError{"the job carries no broadcast object: use enqueue publish for other jobs"}
		}
		subject := e.topo.BulkSubject(*campaign)
		if *campaign == "admin" || strings.ContainsAny(*campaign, ". *>") || e.topo.Lane(subject) == "" || e.topo.Campaign(subject) != *campaign {
			return usageError{fmt.Sprintf("--campaign %q: want one subject token, not admin", clipArg(*campaign))}
		}
		if !*yes {
			if f, ok := e.stdin.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
				return usageError{"a broadcast reaches every device of the app: it asks on a terminal, and needs --yes without one"}
			}
			if !e.confirmBroadcast(bc, subject) {
				return nil
			}
		}
		return e.publishJobs(subject, []*job.Job{bc}, 0, *wait, *timeout)
	}}
}

// jobFlagsSet reports whether a flag that builds the job was given.
func jobFlagsSet(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "campaign", "yes", "wait", "timeout":
		default:
			set = set || !strings.HasPrefix(f.Name, "nats-") // the connection's flags are not the job's
		}
	})
	return set
}

// broadcastJobID derives the job id from what makes the broadcast itself.
func broadcastJobID(j *job.Job) string {
	sum := sha256.Sum256([]byte(j.AppID + "\x00" + j.WorkspaceID + "\x00" + j.Broadcast.MsgKey))
	return "broadcast-" + hex.EncodeToString(sum[:8])
}

// confirmBroadcast asks on the terminal whether to publish j.
func (e *env) confirmBroadcast(j *job.Job, subject string) bool {
	fmt.Fprintf(e.stdout, "Broadcast template %q to every device (deliveryType %d) of app %s, workspace %s, msgKey %q, as job %s on %s? [y/N] ",
		j.TemplateName, j.DeliveryType, j.AppID, j.WorkspaceID, j.Broadcast.MsgKey, j.JobID, subject)
	answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		fmt.Fprintln(e.stdout, "nothing published")
		return false
	}
	return true
}
