package mpaassim

import (
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"time"
)

// Stats is what the emulator saw.
type Stats struct {
	Calls    int64               `json:"calls"`    // requests that arrived, of both actions
	Accepted int64               `json:"accepted"` // of them, pushes recorded
	ByCode   map[string]int64    `json:"byCode"`   // answers by code: OK, 3022, Throttling.User, …
	ByAPI    map[string]APIStats `json:"byAPI"`    // by action: PushTemplate, PushMultiple, the recall actions ("" for an unknown one)
	ByKey    map[string]KeyStats `json:"byKey"`    // by the AccessKey a call was signed with ("" for a key the emulator does not know)
	Recall   Recall              `json:"recall"`   // what was revoked and canceled, and the scheduled tasks pending

	Pairs          int `json:"pairs"`          // distinct (app, workspace, target, msgKey) delivered
	Deliveries     int `json:"deliveries"`     // deliveries of pairs, repeats included
	DuplicatePairs int `json:"duplicatePairs"` // pairs delivered more than once

	// Rate fidelity: the most calls that arrived in any one-second window (sliding),
	// and the mean rate from the first call to the last.
	MaxCallsInOneSecond int     `json:"maxCallsInOneSecond"`
	MeanCallsPerSecond  float64 `json:"meanCallsPerSecond"`
}

// APIStats count one action's calls and pairs.
type APIStats struct {
	Calls      int64 `json:"calls"`
	Accepted   int64 `json:"accepted"`
	Deliveries int   `json:"deliveries"` // pairs delivered by this action, repeats included
	Pairs      int   `json:"pairs"`      // distinct pairs whose last delivery was by this action
}

// KeyStats count the calls signed with one AccessKey.
type KeyStats struct {
	Calls     int64            `json:"calls"`
	Accepted  int64            `json:"accepted"`  // pushes recorded
	Throttled int64            `json:"throttled"` // answered Throttling.User (its quota, or rateThrottle) or 8011
	Apps      map[string]int64 `json:"apps"`      // calls by AppId
}

// keyStatsLocked counts c under its key, and under "" when the key is not
// one of the emulator's (so that a stranger's keys cannot grow the map).
func (s *Server) keyStatsLocked(c Call) {
	key := c.AccessKeyID
	if _, ok := s.cfg.Keys[key]; !ok {
		key = ""
	}
	k := s.stats.byKey[key]
	if k == nil {
		k = &KeyStats{Apps: map[string]int64{}}
		s.stats.byKey[key] = k
	}
	k.Calls++
	switch c.Code {
	case "OK", "TIMEOUT_AFTER_RECORD":
		k.Accepted++
	case "Throttling.User", "8011":
		k.Throttled++
	}
	if app := c.Params["AppId"]; app != "" && (key != "" || len(k.Apps) < 100) {
		k.Apps[app]++
	}
}

// Stats counts everything since the start or the last Reset.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Calls: s.stats.calls, Accepted: s.stats.accepted, ByCode: make(map[string]int64, len(s.stats.byCode))}
	for k, v := range s.stats.byCode {
		st.ByCode[k] = v
	}
	st.ByKey = make(map[string]KeyStats, len(s.stats.byKey))
	for k, v := range s.stats.byKey {
		c := *v
		c.Apps = make(map[string]int64, len(v.Apps))
		for app, n := range v.Apps {
			c.Apps[app] = n
		}
		st.ByKey[k] = c
	}
	st.ByAPI = make(map[string]APIStats, len(s.stats.byAPI))
	for k, v := range s.stats.byAPI {
		st.ByAPI[k] = *v
	}
	for _, d := range s.delivered {
		st.Pairs++
		st.Deliveries += d.count
		if d.count > 1 {
			st.DuplicatePairs++
		}
		a := st.ByAPI[d.api]
		a.Pairs++
		st.ByAPI[d.api] = a
	}
	st.MaxCallsInOneSecond, st.MeanCallsPerSecond = rateOf(s.arrivals)
	st.Recall = s.recallLocked(s.cfg.Now())
	return st
}

// rateOf finds the busiest one-second window of the arrival times and the mean rate.
func rateOf(arrivals []int64) (maxWindow int, mean float64) {
	if len(arrivals) == 0 {
		return 0, 0
	}
	a := append([]int64(nil), arrivals...)
	sort.Slice(a, func(i, j int) bool { return a[i] < a[j] })
	lo := 0
	for hi := range a {
		for a[hi]-a[lo] >= int64(time.Second) {
			lo++
		}
		maxWindow = max(maxWindow, hi-lo+1)
	}
	if span := time.Duration(a[len(a)-1] - a[0]); span > 0 {
		mean = float64(len(a)-1) / span.Seconds()
	}
	return maxWindow, mean
}

// Delivered is how many times one pair was delivered.
func (s *Server) Delivered(app, workspace, target, msgKey string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.delivered[pairKey{app, workspace, target, msgKey}]; d != nil {
		return d.count
	}
	return 0
}

// Delivery is one pair, how many times it was delivered, and how it was last:
// by which action, with which template values and extended params (a JSON
// object each, "" when none was sent).
type Delivery struct {
	AppID            string `json:"appId"`
	WorkspaceID      string `json:"workspaceId"`
	Target           string `json:"target"`
	MsgKey           string `json:"msgKey"`
	Count            int    `json:"count"`
	API              string `json:"api"`
	TemplateKeyValue string `json:"templateKeyValue,omitempty"`
	ExtendedParams   string `json:"extendedParams,omitempty"`
}

// Deliveries lists the pairs delivered at least min times.
func (s *Server) Deliveries(min int) []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Delivery
	for k, d := range s.delivered {
		if d.count >= min {
			out = append(out, Delivery{AppID: k.app, WorkspaceID: k.workspace, Target: k.target, MsgKey: k.msgKey,
				Count: d.count, API: d.api, TemplateKeyValue: d.values, ExtendedParams: d.extended})
		}
	}
	return out
}

// Calls are the most recent requests (up to 1,000), oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(append([]Call(nil), s.recent[s.next:]...), s.recent[:s.next]...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serveStats(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.Stats()) }

func (s *Server) serveCalls(w http.ResponseWriter, _ *http.Request) { writeJSON(w, s.Calls()) }

func (s *Server) serveDeliveries(w http.ResponseWriter, r *http.Request) {
	min, _ := strconv.Atoi(r.URL.Query().Get("min"))
	writeJSON(w, s.Deliveries(max(min, 1)))
}

func (s *Server) serveReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}

// faultsWire is Faults with durations as strings ("50ms"), for the HTTP endpoint.
type faultsWire struct {
	Latency          string         `json:"latency"`
	Jitter           string         `json:"jitter"`
	Rate5xx          float64        `json:"rate5xx"`
	RateThrottle     float64        `json:"rateThrottle"`
	Rate8011         float64        `json:"rate8011"`
	RateTimeout      float64        `json:"rateTimeout"`
	TimeoutHold      string         `json:"timeoutHold"`
	QuotaPerSecond   int            `json:"quotaPerSecond"`
	RefuseSignatures bool           `json:"refuseSignatures"`
	FailNext         int            `json:"failNext"`
	QuotaPerKey      map[string]int `json:"quotaPerKey,omitempty"`
}

func (s *Server) serveGetFaults(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	f := s.faults
	s.mu.Unlock()
	writeJSON(w, faultsWire{
		Latency: f.Latency.String(), Jitter: f.Jitter.String(), Rate5xx: f.Rate5xx, RateThrottle: f.RateThrottle,
		Rate8011: f.Rate8011, RateTimeout: f.RateTimeout, TimeoutHold: f.TimeoutHold.String(),
		QuotaPerSecond: f.QuotaPerSecond, RefuseSignatures: f.RefuseSignatures, FailNext: f.FailNext, QuotaPerKey: f.QuotaPerKey,
	})
}

func (s *Server) servePutFaults(w http.ResponseWriter, r *http.Request) {
	var in faultsWire
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
		return
	}
	f := Faults{Rate5xx: in.Rate5xx, RateThrottle: in.RateThrottle, Rate8011: in.Rate8011, RateTimeout: in.RateTimeout,
		QuotaPerSecond: in.QuotaPerSecond, RefuseSignatures: in.RefuseSignatures, FailNext: in.FailNext, QuotaPerKey: in.QuotaPerKey}
	if len(in.QuotaPerKey) > 100 {
		http.Error(w, "faults: quotaPerKey: at most 100 keys", http.StatusBadRequest)
		return
	}
	for _, d := range []struct {
		name, text string
		dst        *time.Duration
	}{{"latency", in.Latency, &f.Latency}, {"jitter", in.Jitter, &f.Jitter}, {"timeoutHold", in.TimeoutHold, &f.TimeoutHold}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil {
			http.Error(w, "faults: "+d.name+": "+err.Error(), http.StatusBadRequest)
			return
		}
		*d.dst = v
	}
	s.SetFaults(f)
	w.WriteHeader(http.StatusNoContent)
}
