package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"

	"github.com/mpaas-push/pushworker/internal/ops"
)

func statusFlags(fs *flag.FlagSet) command {
	asJSON := fs.Bool("json", false, "print JSON")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
		}
		st, err := e.ops.Status(e.ctx)
		if err != nil {
			return err
		}
		if st.Credentials, err = e.ops.Credentials(e.ctx); err != nil {
			return err
		}
		e.printQueueStatus(st, *asJSON)
		return nil
	}}
}

func (e *env) printQueueStatus(st ops.Status, asJSON bool) {
	if asJSON {
		out, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", out)
		return
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tCONSUMER\tWAITING\tIN FLIGHT\tREDELIVERED")
	for _, l := range st.Lanes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", l.Lane, l.Consumer, l.Waiting, l.InFlight, l.Redelivered)
	}
	tw.Flush()
	if n := st.Orphans(); n > 0 {
		fmt.Fprintf(e.stdout, "\norphaned: %d messages acknowledged but still in %s (a crash of a 2.9 server leaves them; enqueue repair removes them)\n", n, e.topo.JobsStream)
	}
	fmt.Fprintf(e.stdout, "\ndead letters: %d (enqueue dlq list)\nresults kept: %d\n", st.DeadLetters, st.Results)
	if len(st.Credentials) > 0 {
		fmt.Fprintln(e.stdout)
		tw = tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CREDENTIAL\tRATE (CALLS/S)\tCALLS\tTHROTTLED\tWORKERS")
		for _, c := range st.Credentials {
			fmt.Fprintf(tw, "%s\t%.0f\t%d\t%d\t%d\n", c.Credential, c.Rate, c.Calls, c.Throttled, c.Workers)
		}
		tw.Flush()
	}
}
