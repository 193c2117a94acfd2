package ops

import (
	"context"
	"encoding/json"
	"sort"
)

// CredentialStatus is one AccessKey the workers sign with, shown by its id's
// first characters (never a secret), over every worker that answered.
type CredentialStatus struct {
	Credential string  `json:"credential"`
	Rate       float64 `json:"rateLimit"` // calls per second in force: the lowest a worker reports (they share it through Redis)
	Calls      int64   `json:"calls"`     // calls that took a slot of its limit, since each worker started
	Throttled  int64   `json:"throttled"` // throttled answers, since each worker started
	Workers    int     `json:"workers"`   // workers that sign with it
}

// Credentials asks every worker for its stats and adds up each credential's.
func (o *Ops) Credentials(ctx context.Context) ([]CredentialStatus, error) {
	raw, err := o.Workers(ctx)
	return CredentialsOf(raw), err
}

// CredentialsOf adds up the credentials of workers' stats answers, sorted by name.
func CredentialsOf(workers []WorkerStats) []CredentialStatus {
	var each [][]CredentialStatus
	for _, data := range workers {
		var w struct {
			Credentials []CredentialStatus `json:"credentials"`
		}
		if json.Unmarshal(data, &w) == nil {
			each = append(each, w.Credentials)
		}
	}
	return SumCredentials(each)
}

// SumCredentials adds up each worker's credentials (each worker's list as its
// stats hold it), sorted by name.
func SumCredentials(each [][]CredentialStatus) []CredentialStatus {
	by := map[string]*CredentialStatus{}
	for _, list := range each {
		for _, c := range list {
			sum := by[c.Credential]
			if sum == nil {
				sum = &CredentialStatus{Credential: c.Credential, Rate: c.Rate}
				by[c.Credential] = sum
			}
			sum.Rate = min(sum.Rate, c.Rate)
			sum.Calls += c.Calls
			sum.Throttled += c.Throttled
			sum.Workers++
		}
	}
	out := make([]CredentialStatus, 0, len(by))
	for _, c := range by {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Credential < out[j].Credential })
	return out
}
