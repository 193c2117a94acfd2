package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/job"
)

func resultFlags(fs *flag.FlagSet) command {
	asJSON := fs.Bool("json", false, "print the stored result as it is")
	return command{run: func(e *env, args []string) error {
		if len(args) != 1 {
			return usageError{"name one JOB-ID"}
		}
		if !job.ValidJobID(args[0]) {
			return usageError{fmt.Sprintf("%q is not a job id", args[0])}
		}
		r, err := e.ops.Result(e.ctx, args[0])
		if errors.Is(err, ops.ErrNotFound) {
			fmt.Fprintf(e.stderr, "enqueue result: %v\n", err)
			return exitError{1}
		}
		if err != nil {
			return err
		}
		if *asJSON {
			out, _ := json.MarshalIndent(r, "", "  ")
			fmt.Fprintf(e.stdout, "%s\n", out)
			return nil
		}
		e.printSummary(r)
		return nil
	}}
}

// printSummary is a result for reading: status, counts, and each call with its
// mPaaS code.
func (e *env) printSummary(r *job.Result) {
	fmt.Fprintf(e.stdout, "job %s: %s", r.JobID, r.Status)
	if r.API != "" {
		fmt.Fprintf(e.stdout, " (%s)", r.API)
	}
	if r.Campaign != "" {
		fmt.Fprintf(e.stdout, ", campaign %s", r.Campaign)
	}
	fmt.Fprintf(e.stdout, "\napp %s, workspace %s, task %q\n", r.AppID, r.WorkspaceID, r.TaskName)
	if r.Error != "" {
		fmt.Fprintf(e.stdout, "error: %s\n", r.Error)
	}
	fmt.Fprintf(e.stdout, "targets: %d: %d sent, %d duplicates, %d failed\n", r.Targets, r.Sent, r.Duplicates, r.Failed)
	fmt.Fprintf(e.stdout, "deliveries: %d, started %s, finished %s\n", r.Deliveries, stamp(r.StartedAt), stamp(r.FinishedAt))
	if len(r.Chunks) == 0 {
		fmt.Fprintln(e.stdout, "no calls")
		return
	}
	fmt.Fprintln(e.stdout)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALL\tSTATUS\tTARGETS\tATTEMPTS\tCODE\tREQUEST ID\tDATA\tERROR")
	for i, c := range r.Chunks {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", i+1, c.Status, len(c.TargetMsgkey), c.Attempts,
			orDash(c.ResultCode), orDash(c.RequestID), orDash(c.Data), c.Error)
	}
	tw.Flush()
}

func stamp(t job.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
