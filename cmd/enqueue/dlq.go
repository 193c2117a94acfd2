package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/mpaas-push/pushworker/internal/ops"
)

// The dlq subcommands are flags and printing over ops: the console calls the
// same methods.

func dlqListFlags(fs *flag.FlagSet) command {
	var f ops.Filter
	fs.StringVar(&f.Campaign, "campaign", "", "only the letters of this campaign")
	fs.StringVar(&f.Reason, "reason", "", "only letters of this reason: rejected, failed or stopped")
	fs.StringVar(&f.ErrorContains, "error", "", "only letters whose error contains this text (any case)")
	fs.IntVar(&f.Limit, "limit", ops.DefaultLimit, fmt.Sprintf("letters in the page, newest first (at most %d)", ops.MaxLimit))
	fs.Uint64Var(&f.Before, "before", 0, "the page of letters older than this sequence (the previous page's next)")
	asJSON := fs.Bool("json", false, "print the page as JSON: letters, next, total")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
		}
		if f.Limit < 1 || f.Limit > ops.MaxLimit {
			return usageError{fmt.Sprintf("--limit %d: from 1 to %d", f.Limit, ops.MaxLimit)}
		}
		return e.dlqList(f, *asJSON)
	}}
}

func (e *env) dlqList(f ops.Filter, asJSON bool) error {
	o := e.ops
	p, err := o.DeadLetters(e.ctx, f)
	if err != nil {
		return err
	}
	if asJSON {
		out, _ := json.MarshalIndent(p, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", out)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tJOB\tREASON\tTARGETS\tDELIVERIES\tAT\tREPLAY\tERROR")
	for _, d := range p.Letters {
		replay := "yes"
		if !d.Replayable {
			replay = "no"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\t%s\t%s\n", d.Seq, d.JobID, d.Reason, d.Targets, d.Deliveries, d.At, replay, d.Error)
	}
	tw.Flush()
	fmt.Fprintf(e.stdout, "%d dead letter(s) shown, newest first, of %d kept\n", len(p.Letters), p.Total)
	switch {
	case p.Capped:
		fmt.Fprintf(e.stdout, "the filter looked at %d letters and stopped; older ones: --before %d\n", p.Scanned, p.Next)
	case p.Next != 0:
		fmt.Fprintf(e.stdout, "older ones: --before %d\n", p.Next)
	}
	return nil
}

func dlqReplayFlags(fs *flag.FlagSet) command {
	all := fs.Bool("all", false, "replay every dead letter that can be replayed")
	force := fs.Bool("force", false, "replay the letters of a canceled campaign too")
	return command{run: func(e *env, ids []string) error {
		if *all == (len(ids) > 0) {
			return usageError{"name the job ids to replay, or --all"}
		}
		return e.dlqReplay(ops.Select{JobIDs: ids, All: *all}, *force)
	}}
}

// dlqReplay publishes the failed targets of dead letters again under derived
// job ids, then removes those dead letters. Rejected jobs are not replayed (they
// would be rejected again), nor a canceled campaign's without force.
func (e *env) dlqReplay(sel ops.Select, force bool) error {
	o := e.ops
	out, err := o.ReplayDeadLetters(e.ctx, sel, force)
	replayed, skipped := 0, 0
	for _, r := range out {
		if r.Err != nil {
			name := r.Letter.JobID
			if name == "" {
				name = "sequence " + strconv.FormatUint(r.Letter.Seq, 10)
			}
			fmt.Fprintf(e.stderr, "skipped %s: %v\n", name, r.Err)
			skipped++
			continue
		}
		fmt.Fprintf(e.stdout, "replayed %s as %s: %d targets to %s\n", r.Letter.JobID, r.NewID, r.Targets, r.Subject)
		replayed++
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%d replayed, %d skipped\n", replayed, skipped)
	if replayed == 0 && (len(sel.JobIDs) > 0 || len(sel.Seqs) > 0) {
		return exitError{1}
	}
	return nil
}

func dlqDeleteFlags(fs *flag.FlagSet) command {
	return command{run: func(e *env, args []string) error {
		if len(args) == 0 {
			return usageError{"name the sequences (SEQ in dlq list) of the letters to delete"}
		}
		var seqs []uint64
		for _, a := range args {
			seq, err := strconv.ParseUint(a, 10, 64)
			if err != nil || seq == 0 {
				return usageError{fmt.Sprintf("%q is not a dead letter's sequence", clipArg(a))}
			}
			seqs = append(seqs, seq)
		}
		return e.dlqDelete(seqs)
	}}
}

func (e *env) dlqDelete(seqs []uint64) error {
	o := e.ops
	missing := 0
	for _, seq := range seqs {
		err := o.DeleteDeadLetter(e.ctx, seq)
		if errors.Is(err, ops.ErrNotFound) {
			fmt.Fprintf(e.stderr, "no dead letter %d\n", seq)
			missing++
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "deleted dead letter %d\n", seq)
	}
	if missing > 0 {
		return exitError{1}
	}
	return nil
}

func dlqPurgeFlags(fs *flag.FlagSet) command {
	var f ops.Filter
	fs.StringVar(&f.Campaign, "campaign", "", "the letters of this campaign")
	fs.StringVar(&f.Reason, "reason", "", "the letters of this reason: rejected, failed or stopped")
	fs.StringVar(&f.ErrorContains, "error", "", "the letters whose error contains this text (any case)")
	yes := fs.Bool("yes", false, "remove without asking (needed without a terminal)")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", clipArg(args[0]))}
		}
		if f.Campaign == "" && f.Reason == "" && f.ErrorContains == "" {
			return usageError{"name what to purge: --campaign, --error or --reason"}
		}
		return e.dlqPurge(f, *yes)
	}}
}

// dlqPurge removes the letters f matches, after asking on a terminal.
func (e *env) dlqPurge(f ops.Filter, yes bool) error {
	what := purgeWhat(f)
	if !yes {
		if fl, ok := e.stdin.(*os.File); !ok || !term.IsTerminal(int(fl.Fd())) {
			return usageError{"dlq purge asks on a terminal; without one, add --yes"}
		}
		fmt.Fprintf(e.stdout, "Remove every dead letter %s? [y/N] ", what)
		answer, _ := bufio.NewReader(e.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(e.stdout, "nothing removed")
			return nil
		}
	}
	o := e.ops
	n, err := o.PurgeDeadLetters(e.ctx, f)
	fmt.Fprintf(e.stdout, "removed %d dead letter(s) %s\n", n, what)
	return err
}

func purgeWhat(f ops.Filter) string {
	var parts []string
	if f.Campaign != "" {
		parts = append(parts, "of campaign "+f.Campaign)
	}
	if f.Reason != "" {
		parts = append(parts, "with reason "+f.Reason)
	}
	if f.ErrorContains != "" {
		parts = append(parts, fmt.Sprintf("whose error contains %q", f.ErrorContains))
	}
	return strings.Join(parts, ", ")
}

// clipArg is at most 100 bytes of a command-line argument, for an error.
func clipArg(s string) string {
	if len(s) > 100 {
		return s[:100] + "…"
	}
	return s
}
