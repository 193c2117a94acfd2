package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mpaas-push/pushworker/internal/ops"
)

func repairFlags(fs *flag.FlagSet) command {
	yes := fs.Bool("yes", false, "remove without asking")
	asJSON := fs.Bool("json", false, "print what would be removed as JSON and remove nothing")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
		}
		return e.repair(*yes, *asJSON)
	}}
}

// repair shows the orphans (see ops.Orphan), asks, and removes them from the
// job stream.
func (e *env) repair(yes, asJSON bool) error {
	found, err := e.ops.Orphans(e.ctx)
	if err != nil {
		return err
	}
	if asJSON {
		if found == nil {
			found = []ops.Orphan{}
		}
		out, _ := json.MarshalIndent(found, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", out)
		return nil
	}
	if len(found) == 0 {
		fmt.Fprintf(e.stdout, "%s holds no orphaned messages: nothing to repair\n", e.topo.JobsStream)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tSEQUENCE\tSUBJECT\tJOB ID\tPUBLISHED\tRESULT KEPT")
	for _, o := range found {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", o.Lane, o.Sequence, o.Subject, o.JobID,
			o.Published.UTC().Format(time.RFC3339), map[bool]string{true: "yes", false: "no"}[o.Result])
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "\n%d messages of %s are at or below their lane's ack floor: their consumer has acknowledged them\n"+
		"and no worker will deliver them again (a crash of a 2.9 server leaves such messages behind).\n", len(found), e.topo.JobsStream)
	if !yes {
		fmt.Fprintf(e.stdout, "Remove them? [y/N] ")
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(e.stdout, "nothing removed")
			return nil
		}
	}
	removed, err := e.ops.RemoveOrphans(e.ctx, found)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "removed %d orphaned messages from %s\n", removed, e.topo.JobsStream)
	if len(found) >= ops.MaxOrphans {
		fmt.Fprintln(e.stdout, "there may be more: run enqueue repair again")
	}
	return nil
}
