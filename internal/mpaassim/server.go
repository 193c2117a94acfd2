// Package mpaassim is a stand-in for the mPaaS push endpoints (PushTemplate,
// PushMultiple, PushSimple, PushBroadcast) and the recall ones: it verifies the request signature, checks the parameters as the API
// document and metadata say, answers in mPaaS's shapes, injects faults on demand
// and records every delivered (app, workspace, target, msgKey) with the values it
// was delivered with. The project's tests, dev mode and benchmarks run
// against it, and cmd/mpaas-sim serves it on its own.
//
// It imports, of this project, only clock: it judges requests by mPaaS's rules, never by the
// worker's code.
package mpaassim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/mpaas-push/pushworker/internal/clock"
)

// Defaults of Config.
const (
	DefaultTimestampWindow = 15 * time.Minute
	DefaultTimeoutHold     = 30 * time.Second
	recentCalls            = 1000
)

// The emulator's own AccessKey: cmd/mpaas-sim accepts it when it is given no
// key, and a dev-mode worker signs with it (no real account has it).
const (
	OwnKeyID     = "sim-access-key"
	OwnKeySecret = "sim-access-secret"
)

// Config of a Server.
type Config struct {
	Keys              map[string]string // AccessKey id → secret
	Templates         map[string]string // template name → text with #variable# placeholders
	AcceptAnyTemplate bool              // every template exists and needs no variables
	TimestampWindow   time.Duration     // how far a request's Timestamp may be from now; also how long a nonce is remembered
	// HexTaskIDs makes immediate pushes answer a 32-hex task id as Data, the
	// form of a scheduled task's id: PushTemplate and PushMultiple alike. Without
	// it an immediate PushMultiple answers a number and PushTemplate nothing.
	// mPaaS documents neither form; this is how the tests show that recall never
	// guesses from an id's form.
	HexTaskIDs bool
	Faults     Faults
	Analysis   Analysis // how QueryPushAnalysis* count (analysis.go)
	Now        func() time.Time
}

// Faults are injected on demand. Rates are probabilities per call, in [0, 1].
type Faults struct {
	Latency        time.Duration `json:"latency"`
	Jitter         time.Duration `json:"jitter"`         // added: uniform in [0, Jitter]
	Rate5xx        float64       `json:"rate5xx"`        // 503 ServiceUnavailable or 500 InternalError
	RateThrottle   float64       `json:"rateThrottle"`   // 400 Throttling.User
	Rate8011       float64       `json:"rate8011"`       // 200 with 8011 FLOW_CONTROL_ERROR
	RateTimeout    float64       `json:"rateTimeout"`    // the push is recorded, then no answer for TimeoutHold
	TimeoutHold    time.Duration `json:"timeoutHold"`    // 0: DefaultTimeoutHold
	QuotaPerSecond int           `json:"quotaPerSecond"` // calls per wall-clock second past which 400 Throttling.User; 0: none
	// QuotaPerKey is a quota of each AccessKey's own, as mPaaS holds one per
	// account: calls signed with the key per wall-clock second past which
	// 400 Throttling.User. A key not listed has none (QuotaPerSecond still holds).
	QuotaPerKey      map[string]int `json:"quotaPerKey,omitempty"`
	RefuseSignatures bool           `json:"refuseSignatures"` // every call fails with SignatureDoesNotMatch, as with a rotated key
	// FailNext is how many of the next signed calls answer 503
	// ServiceUnavailable, one fewer with each: a transient failure a test can
	// count on, where the rates above are drawn by chance.
	FailNext int `json:"failNext"`
}

// Server is the emulator. Its zero value is not usable: call New.
type Server struct {
	cfg Config
	mux *http.ServeMux

	mu         sync.Mutex
	faults     Faults
	nonces     map[string]time.Time
	nonceQueue []nonceEntry
	second     int64 // current wall-clock second for the quota
	inSecond   int
	keySecond  map[string]keyQuota // per AccessKey, for Faults.QuotaPerKey
	stats      counters
	delivered  map[pairKey]*delivery
	arrivals   []int64                   // unix nanos of every call, for rate fidelity
	recent     []Call                    // a ring of the last recentCalls calls
	next       int                       // where the next call goes in recent once it is full
	pushTasks  int64                     // push task ids handed out
	tasks      map[string]*pushTask      // PushMultiple and PushBroadcast push tasks, by id
	broadcasts map[pairKey]int           // accepted PushBroadcast calls by (app, workspace, "", Msgkey)
	scheduled  map[string]*scheduledTask // scheduled tasks, by unique id
	counted    []countedCall             // accepted push calls, for the analytics
}

type nonceEntry struct {
	nonce string
	at    time.Time
}

type pairKey struct{ app, workspace, target, msgKey string }

// delivery is what became of one pair: how often, by which action, and the
// values of its last delivery.
type delivery struct {
	count            int
	api              string
	values, extended string
	at               time.Time // of the last delivery: mPaaS revokes only what it pushed in the last 7 days
	task             string    // the push task of a PushMultiple delivery
	revoked          int       // 1 once revoked
	revokeCalls      int       // successful RevokePushMessage calls for it
}

type counters struct {
	calls                                     int64
	accepted                                  int64
	revokedPairs, revokedTasks, canceledTasks int64
	byCode                                    map[string]int64
	byAPI                                     map[string]*APIStats
	byKey                                     map[string]*KeyStats
}

// Call is one request as the emulator received it.
type Call struct {
	At          time.Time         `json:"at"`
	Action      string            `json:"action"`
	AccessKeyID string            `json:"accessKeyId"` // the key it was signed with (or claimed, when refused)
	Params      map[string]string `json:"params"`      // form parameters (the body), by their wire names
	RequestID   string            `json:"requestId"`
	HTTPStatus  int               `json:"httpStatus"`
	Code        string            `json:"code"`
}

// New makes a Server.
func New(cfg Config) *Server {
	if cfg.TimestampWindow <= 0 {
		cfg.TimestampWindow = DefaultTimestampWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, faults: cfg.Faults}
	s.resetLocked()
	s.mux = http.NewServeMux()
	s.mux.HandleFunc("/", s.serveAPI)
	s.mux.HandleFunc("GET /sim/stats", s.serveStats)
	s.mux.HandleFunc("GET /sim/faults", s.serveGetFaults)
	s.mux.HandleFunc("PUT /sim/faults", s.servePutFaults)
	s.mux.HandleFunc("POST /sim/reset", s.serveReset)
	s.mux.HandleFunc("GET /sim/calls", s.serveCalls)
	s.mux.HandleFunc("GET /sim/deliveries", s.serveDeliveries)
	return s
}

// ServeHTTP serves the API at / and the emulator's own endpoints under /sim/.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// SetFaults replaces the faults in force.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
}

// Reset forgets every call, delivery and nonce.
func (s *Server) Reset() {
	s.mu.Lock()
	s.resetLocked()
	s.mu.Unlock()
}

func (s *Server) resetLocked() {
	s.nonces = map[string]time.Time{}
	s.nonceQueue = nil
	s.stats = counters{byCode: map[string]int64{}, byAPI: map[string]*APIStats{}, byKey: map[string]*KeyStats{}}
	s.delivered = map[pairKey]*delivery{}
	s.tasks = map[string]*pushTask{}
	s.broadcasts = map[pairKey]int{}
	s.scheduled = map[string]*scheduledTask{}
	s.counted = nil
	s.arrivals = nil
	s.recent, s.next = nil, 0
}

// apiError is a gateway error: a non-2xx answer with a JSON Code.
type apiError struct {
	status  int
	code    string
	message string
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	now := s.cfg.Now()
	requestID := newRequestID()
	action, form, aerr := s.authenticate(r, now)
	key := r.URL.Query().Get("AccessKeyId")
	if key == "" {
		key = form["AccessKeyId"]
	}
	s.mu.Lock()
	s.stats.calls++
	s.apiStatsLocked(action).Calls++
	s.arrivals = append(s.arrivals, now.UnixNano())
	faults := s.faults
	if aerr == nil {
		aerr = s.quotaLocked(now, faults, key)
	}
	if aerr == nil && s.faults.FailNext > 0 {
		s.faults.FailNext--
		aerr = &apiError{503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."}
	}
	s.mu.Unlock()

	if aerr == nil {
		aerr = randomGatewayFault(faults)
	}
	if aerr == nil {
		aerr = missingParam(action, form)
	}
	// The request has arrived whole: as at mPaaS, a client that stops waiting
	// for the answer does not take the push back, so the call goes on.
	clock.Sleep(context.WithoutCancel(r.Context()), faults.Latency+jitter(faults.Jitter))
	if aerr != nil {
		s.finish(w, Call{At: now, Action: action, AccessKeyID: key, Params: form, RequestID: requestID, HTTPStatus: aerr.status, Code: aerr.code}, gatewayBody(requestID, aerr))
		return
	}
	if isAnalysis(action) {
		s.serveAnalysis(w, Call{At: now, Action: action, AccessKeyID: key, Params: form, RequestID: requestID, HTTPStatus: 200}, now)
		return
	}
	if recallActions[action] {
		s.serveRecall(w, Call{At: now, Action: action, AccessKeyID: key, Params: form, RequestID: requestID, HTTPStatus: 200}, now)
		return
	}
	p, berr := s.checkParams(action, form, now)
	if berr == nil && mrand.Float64() < faults.Rate8011 {
		berr = &bizError{code: "8011", message: "FLOW_CONTROL_ERROR"}
	}
	if berr != nil {
		s.finish(w, Call{At: now, Action: action, AccessKeyID: key, Params: form, RequestID: requestID, HTTPStatus: 200, Code: berr.code}, bizBody(requestID, berr))
		return
	}
	data, berr := s.accept(p, now)
	if berr != nil {
		s.finish(w, Call{At: now, Action: action, AccessKeyID: key, Params: form, RequestID: requestID, HTTPStatus: 200, Code: berr.code}, bizBody(requestID, berr))
		return
	}
	call := Call{At: now, Action: action, AccessKeyID: key, Params: form, RequestID: requestID, HTTPStatus: 200, Code: "OK"}
	if mrand.Float64() < faults.RateTimeout {
		hold := faults.TimeoutHold
		if hold <= 0 {
			hold = DefaultTimeoutHold
		}
		call.Code = "TIMEOUT_AFTER_RECORD"
		if !clock.Sleep(r.Context(), hold) {
			s.note(call)
			return
		}
	}
	s.finish(w, call, okBody(requestID, data))
}

func (s *Server) finish(w http.ResponseWriter, c Call, body answer) {
	s.note(c)
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.Header().Set("x-acs-request-id", c.RequestID)
	w.WriteHeader(c.HTTPStatus)
	_ = json.NewEncoder(w).Encode(body)
}

func (s *Server) note(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.byCode[c.Code]++
	s.keyStatsLocked(c)
	if c.Code == "OK" || c.Code == "TIMEOUT_AFTER_RECORD" {
		s.stats.accepted++
		s.apiStatsLocked(c.Action).Accepted++
	}
	if len(s.recent) < recentCalls {
		s.recent = append(s.recent, c)
		return
	}
	s.recent[s.next] = c
	s.next = (s.next + 1) % recentCalls
}

// apiStatsLocked are the counters of one action ("" for a call whose action was
// refused).
func (s *Server) apiStatsLocked(action string) *APIStats {
	st := s.stats.byAPI[action]
	if st == nil {
		st = &APIStats{}
		s.stats.byAPI[action] = st
	}
	return st
}

// keyQuota is one AccessKey's calls in the current wall-clock second.
type keyQuota struct {
	second int64
	calls  int
}

// quotaLocked applies the per-second quotas, the key's own first; it counts
// every authenticated call.
func (s *Server) quotaLocked(now time.Time, f Faults, key string) *apiError {
	if q, ok := f.QuotaPerKey[key]; ok && q > 0 {
		if s.keySecond == nil {
			s.keySecond = map[string]keyQuota{}
		}
		k := s.keySecond[key]
		if sec := now.Unix(); sec != k.second {
			k = keyQuota{second: sec}
		}
		k.calls++
		s.keySecond[key] = k
		if k.calls > q {
			return &apiError{400, "Throttling.User", "Request was denied due to user flow control."}
		}
	}
	if f.QuotaPerSecond <= 0 {
		return nil
	}
	sec := now.Unix()
	if sec != s.second {
		s.second, s.inSecond = sec, 0
	}
	s.inSecond++
	if s.inSecond > f.QuotaPerSecond {
		return &apiError{400, "Throttling.User", "Request was denied due to user flow control."}
	}
	return nil
}

func randomGatewayFault(f Faults) *apiError {
	if f.RefuseSignatures {
		return &apiError{400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."}
	}
	if f.RateThrottle > 0 && mrand.Float64() < f.RateThrottle {
		return &apiError{400, "Throttling.User", "Request was denied due to user flow control."}
	}
	if f.Rate5xx > 0 && mrand.Float64() < f.Rate5xx {
		if mrand.IntN(2) == 0 {
			return &apiError{503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."}
		}
		return &apiError{500, "InternalError", "The request processing has failed due to some unknown error."}
	}
	return nil
}

// authenticate checks Action, the signature, the timestamp and the nonce, and
// returns the action and the form (body) parameters.
func (s *Server) authenticate(r *http.Request, now time.Time) (action string, form map[string]string, err *apiError) {
	form, err = s.verify(r, now)
	action = r.URL.Query().Get("Action")
	if !pushActions[action] && !recallActions[action] {
		action = ""
	}
	return action, form, err
}

func (s *Server) verify(r *http.Request, now time.Time) (form map[string]string, err *apiError) {
	form = map[string]string{}
	if perr := r.ParseForm(); perr != nil {
		return form, &apiError{400, "InvalidParameter", "The request body could not be parsed."}
	}
	params := map[string]string{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	for k, v := range r.PostForm {
		form[k] = v[0]
		if _, inQuery := params[k]; !inQuery {
			params[k] = v[0]
		}
	}
	if !pushActions[params["Action"]] && !recallActions[params["Action"]] {
		return form, &apiError{404, "InvalidApi.NotFound", fmt.Sprintf("Specified api %q is not found.", params["Action"])}
	}
	for _, k := range []string{"AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "SignatureMethod", "SignatureVersion"} {
		if params[k] == "" {
			return form, &apiError{400, "IncompleteSignature", "The request signature does not conform to Aliyun standards: " + k + " is missing."}
		}
	}
	if params["SignatureMethod"] != "HMAC-SHA1" || params["SignatureVersion"] != "1.0" {
		return form, &apiError{400, "IncompleteSignature", "Only SignatureMethod HMAC-SHA1 with SignatureVersion 1.0 is supported."}
	}
	secret, ok := s.cfg.Keys[params["AccessKeyId"]]
	if !ok {
		return form, &apiError{404, "InvalidAccessKeyId.NotFound", "Specified access key is not found."}
	}
	ts, terr := time.Parse("2006-01-02T15:04:05Z", params["Timestamp"])
	if terr != nil {
		return form, &apiError{400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."}
	}
	if d := now.Sub(ts); d > s.cfg.TimestampWindow || d < -s.cfg.TimestampWindow {
		return form, &apiError{400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."}
	}
	if !signatureMatches(params["Signature"], sign(r.Method, params, secret)) {
		return form, &apiError{400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation."}
	}
	if !s.useNonce(params["SignatureNonce"], now) {
		return form, &apiError{400, "SignatureNonceUsed", "Specified signature nonce was used already."}
	}
	return form, nil
}

// useNonce remembers a nonce for the timestamp window; a repeat inside it is refused.
func (s *Server) useNonce(nonce string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-s.cfg.TimestampWindow)
	n := 0
	for n < len(s.nonceQueue) && s.nonceQueue[n].at.Before(cut) {
		delete(s.nonces, s.nonceQueue[n].nonce)
		n++
	}
	s.nonceQueue = s.nonceQueue[n:]
	if _, used := s.nonces[nonce]; used {
		return false
	}
	s.nonces[nonce] = now
	s.nonceQueue = append(s.nonceQueue, nonceEntry{nonce, now})
	return true
}

var templateVar = regexp.MustCompile(`#([^#\s]+)#`)

func jitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return time.Duration(mrand.Int64N(int64(max) + 1))
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

func newTaskID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// answer is a JSON body in one of mPaaS's shapes.
type answer map[string]any

func okBody(requestID, data string) answer {
	return answer{"RequestId": requestID, "ResultCode": "OK", "ResultMessage": "",
		"PushResult": map[string]any{"Success": true, "ResultMsg": "", "Data": data}}
}

func bizBody(requestID string, e *bizError) answer {
	return answer{"RequestId": requestID, "ResultCode": e.code, "ResultMessage": e.message,
		"PushResult": map[string]any{"Success": false, "ResultMsg": e.message, "Data": ""}}
}

func gatewayBody(requestID string, e *apiError) answer {
	return answer{"RequestId": requestID, "HostId": "mpaas.cn-hangzhou.aliyuncs.com", "Code": e.code, "Message": e.message,
		"Recommend": "https://api.aliyun.com/troubleshoot?q=" + e.code}
}
