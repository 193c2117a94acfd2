package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mpaas-push/pushworker/internal/campaign"
	"github.com/mpaas-push/pushworker/internal/ops"
	"github.com/mpaas-push/pushworker/job"
)

func init() { subcommands["campaign report"] = campaignReportFlags }

// campaignReportFlags is `enqueue campaign report NAME [--json]`: what mPaaS
// counted of the campaign's pushes, fetched by a worker.
func campaignReportFlags(fs *flag.FlagSet) command {
	asJSON := fs.Bool("json", false, "print JSON")
	return command{run: func(e *env, args []string) error {
		if len(args) != 1 {
			return usageError{"campaign report: want NAME"}
		}
		if err := campaign.ValidName(args[0]); err != nil {
			return usageError{strings.TrimPrefix(err.Error(), campaign.ErrInvalid.Error()+": ")}
		}
		rep, err := e.ops.Report(e.ctx, args[0])
		if err != nil {
			if errors.Is(err, ops.ErrNoWorkers) || errors.Is(err, ops.ErrTimedOut) {
				fmt.Fprintln(e.stderr, "enqueue:", err)
				return exitError{1}
			}
			return refused(e, err)
		}
		if *asJSON {
			return json.NewEncoder(e.stdout).Encode(rep)
		}
		printReport(e.stdout, rep)
		return nil
	}}
}

// printReport prints the figures, or "not ready yet", with the time they were fetched.
func printReport(w io.Writer, rep *ops.DeliveryReport) {
	kept := ""
	if rep.Cached {
		kept = " (kept since the campaign finished)"
	}
	fmt.Fprintf(w, "campaign %s: delivery report fetched %s%s\n", rep.Campaign, rep.FetchedAt.UTC().Format("2006-01-02 15:04:05 UTC"), kept)
	if !rep.Ready {
		fmt.Fprintln(w, "  not ready yet: mPaaS has no figures for its pushes so far (it counts them with a delay)")
	} else {
		fmt.Fprintf(w, "  %s\n", figures(rep.Total))
	}
	switch {
	case rep.TasksCounted > 0:
		fmt.Fprintf(w, "  push tasks: %d of %d counted so far, summed: %s\n", rep.TasksCounted, rep.TaskIDs, figures(rep.Tasks))
	case rep.TaskIDs > 0:
		fmt.Fprintf(w, "  push tasks: 0 of %d counted so far\n", rep.TaskIDs)
	}
	for _, win := range rep.Windows {
		state := figures(win.Figures)
		if !win.Ready {
			state = "not ready yet"
		}
		fmt.Fprintf(w, "  %s pushes of app %s (workspace %s), %s to %s: %s\n    the app's figures for that window: other %s pushes made meanwhile are included\n",
			win.Type, win.AppID, win.WorkspaceID, win.From.UTC().Format(time.TimeOnly), win.To.UTC().Format(time.TimeOnly), state, win.Type)
	}
	if rep.Scheduled > 0 || rep.Truncated > 0 {
		fmt.Fprintf(w, "  not asked about: %d scheduled chunks, %d results stored without their chunks\n", rep.Scheduled, rep.Truncated)
	}
}

// figures is one line of figures and their rates.
func figures(f job.Figures) string {
	return fmt.Sprintf("pushed %d, arrived %d (%.1f%%), opened %d (%.1f%%)", f.Pushed, f.Arrived, 100*f.ArrivalRate(), f.Opened, 100*f.OpenRate())
}

// report is the console's delivery report of a campaign (its card's Report
// button): what `enqueue campaign report` prints, as JSON.
func (c *console) report(e *env, r *http.Request) (any, error) {
	name := r.PathValue("name")
	if err := campaign.ValidName(name); err != nil {
		return nil, usageError{err.Error()}
	}
	return e.ops.Report(r.Context(), name)
}
