package ops

import "context"

// LaneStatus is one lane's consumer.
type LaneStatus struct {
	Lane        string `json:"lane"`
	Consumer    string `json:"consumer"`
	Waiting     uint64 `json:"waiting"`     // jobs not yet delivered
	InFlight    int    `json:"inFlight"`    // delivered, not yet acknowledged
	Redelivered int    `json:"redelivered"` // of those, delivered more than once
	Orphans     int    `json:"orphans"`     // acknowledged, still in the stream (see Orphans)
}

// Status is the queue at a glance: each lane, and the sizes of the dead-letter
// and result streams. Its JSON is enqueue status --json's, which scripts read.
type Status struct {
	Lanes       []LaneStatus `json:"lanes"`
	DeadLetters uint64       `json:"deadLetters"`
	Results     uint64       `json:"results"`
	// Credentials are the AccessKeys the workers sign with (enqueue status
	// asks the workers for them: Credentials); absent when none answered.
	Credentials []CredentialStatus `json:"credentials,omitempty"`
}

// Orphans is how many orphans the lanes hold together.
func (s Status) Orphans() int {
	n := 0
	for _, l := range s.Lanes {
		n += l.Orphans
	}
	return n
}

// Status reads the lanes' consumers, the orphans (which takes a second more
// when there are some, see Orphans) and the streams' sizes.
func (o *Ops) Status(ctx context.Context) (Status, error) {
	var st Status
	for _, l := range o.topo.Lanes() {
		info, err := o.consumerInfo(ctx, l)
		if err != nil {
			return st, err
		}
		st.Lanes = append(st.Lanes, LaneStatus{Lane: l.Name, Consumer: l.Consumer, Waiting: info.NumPending,
			InFlight: info.NumAckPending, Redelivered: info.NumRedelivered})
	}
	found, err := o.Orphans(ctx)
	if err != nil {
		return st, err
	}
	for _, or := range found {
		for i := range st.Lanes {
			if st.Lanes[i].Lane == or.Lane {
				st.Lanes[i].Orphans++
			}
		}
	}
	for _, s := range []struct {
		name string
		dst  *uint64
	}{{o.topo.DLQStream, &st.DeadLetters}, {o.topo.ResultsStream, &st.Results}} {
		stream, err := o.stream(ctx, s.name)
		if err != nil {
			return st, err
		}
		*s.dst = stream.CachedInfo().State.Msgs
	}
	return st, nil
}
