package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"text/tabwriter"
)

// laneStatus is one lane's consumer.
type laneStatus struct {
	Lane        string `json:"lane"`
	Consumer    string `json:"consumer"`
	Waiting     uint64 `json:"waiting"`     // jobs not yet delivered
	InFlight    int    `json:"inFlight"`    // delivered, not yet acknowledged
	Redelivered int    `json:"redelivered"` // of those, delivered more than once
	Orphans     int    `json:"orphans"`     // acknowledged, still in the stream (enqueue repair)
}

type status struct {
	Lanes       []laneStatus `json:"lanes"`
	DeadLetters uint64       `json:"deadLetters"`
	Results     uint64       `json:"results"`
}

func statusFlags(fs *flag.FlagSet) command {
	asJSON := fs.Bool("json", false, "print JSON")
	return command{run: func(e *env, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Sprintf("unexpected argument %q", args[0])}
		}
		return e.status(*asJSON)
	}}
}

func (e *env) status(asJSON bool) error {
	st, err := e.statusData()
	if err != nil {
		return err
	}
	return e.printQueueStatus(st, asJSON)
}

// statusData reads the lanes' consumers, the orphans and the streams' sizes.
func (e *env) statusData() (status, error) {
	var st status
	for _, l := range e.topo.Lanes() {
		info, err := e.consumerInfo(l)
		if err != nil {
			return st, err
		}
		st.Lanes = append(st.Lanes, laneStatus{Lane: l.Name, Consumer: l.Consumer, Waiting: info.NumPending,
			InFlight: info.NumAckPending, Redelivered: info.NumRedelivered})
	}
	found, err := e.orphans()
	if err != nil {
		return st, err
	}
	for _, o := range found {
		for i := range st.Lanes {
			if st.Lanes[i].Lane == o.Lane {
				st.Lanes[i].Orphans++
			}
		}
	}
	for _, s := range []struct {
		name string
		dst  *uint64
	}{{e.topo.DLQStream, &st.DeadLetters}, {e.topo.ResultsStream, &st.Results}} {
		stream, err := e.js.Stream(e.ctx, s.name)
		if err != nil {
			return st, fmt.Errorf("stream %s: %w", s.name, err)
		}
		*s.dst = stream.CachedInfo().State.Msgs
	}
	return st, nil
}

func (e *env) printQueueStatus(st status, asJSON bool) error {
	if asJSON {
		out, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintf(e.stdout, "%s\n", out)
		return nil
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LANE\tCONSUMER\tWAITING\tIN FLIGHT\tREDELIVERED")
	for _, l := range st.Lanes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", l.Lane, l.Consumer, l.Waiting, l.InFlight, l.Redelivered)
	}
	tw.Flush()
	orphans := 0
	for _, l := range st.Lanes {
		orphans += l.Orphans
	}
	if orphans > 0 {
		fmt.Fprintf(e.stdout, "\norphaned: %d messages acknowledged but still in %s (a crash of a 2.9 server leaves them; enqueue repair removes them)\n", orphans, e.topo.JobsStream)
	}
	fmt.Fprintf(e.stdout, "\ndead letters: %d (enqueue dlq list)\nresults kept: %d\n", st.DeadLetters, st.Results)
	return nil
}
