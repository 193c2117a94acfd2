// Package push calls mPaaS: PushTemplate for a targetMsgkey job (calls of at most
// ten targets), PushMultiple for a targetMsgs job (at most a hundred, each with its
// own values), PushSimple for a free-text job (ten targets), PushBroadcast for a
// broadcast (one call), with every parameter the job carries, and classifies the
// answer, which has the same shape for all four.
//
// It imports, of this project, only job.
package push

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/responses"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/mpaas"

	"github.com/mpaas-push/pushworker/job"
)

// Defaults of Config.
const (
	DefaultEndpoint       = "mpaas.cn-hangzhou.aliyuncs.com"
	DefaultRegion         = "cn-hangzhou"
	DefaultTimeout        = 10 * time.Second
	DefaultConnectTimeout = 3 * time.Second
	DefaultMaxConns       = 256
)

// Config of a Client.
type Config struct {
	// Endpoint is a host ("mpaas.cn-hangzhou.aliyuncs.com", HTTPS) or a full URL with
	// scheme and port ("http://127.0.0.1:18080").
	Endpoint        string
	Region          string
	AccessKeyID     string
	AccessKeySecret string
	Timeout         time.Duration // a whole call, from connect to the last byte of the answer
	ConnectTimeout  time.Duration
	MaxConns        int         // pooled connections per host
	TLS             *tls.Config // nil: the system's roots
}

// Endpoint is where calls go.
type Endpoint struct {
	Scheme string // "HTTPS" or "HTTP", as the SDK wants it
	Host   string // host[:port]
}

// ParseEndpoint reads MPAAS_ENDPOINT: a bare host means HTTPS; a URL says its scheme.
func ParseEndpoint(s string) (Endpoint, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultEndpoint
	}
	if !strings.Contains(s, "://") {
		if strings.ContainsAny(s, "/?# ") {
			return Endpoint{}, fmt.Errorf("MPAAS_ENDPOINT %q: want a host or a URL such as http://127.0.0.1:18080", s)
		}
		return Endpoint{Scheme: "HTTPS", Host: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("MPAAS_ENDPOINT %q: %w", s, err)
	}
	if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return Endpoint{}, fmt.Errorf("MPAAS_ENDPOINT %q: want scheme://host[:port] with no path", s)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return Endpoint{Scheme: "HTTPS", Host: u.Host}, nil
	case "http":
		return Endpoint{Scheme: "HTTP", Host: u.Host}, nil
	}
	return Endpoint{}, fmt.Errorf("MPAAS_ENDPOINT %q: scheme must be http or https", s)
}

// URL is the endpoint as a URL, for logs.
func (e Endpoint) URL() string { return strings.ToLower(e.Scheme) + "://" + e.Host }

// Client calls the four push actions and the recall ones. It is safe for concurrent use: one SDK client (which
// is not) serves one call at a time, and all of them share one connection pool.
type Client struct {
	endpoint  Endpoint
	region    string
	cred      *credentials.AccessKeyCredential
	timeout   time.Duration
	transport *http.Transport
	pool      sync.Pool // of *sdkClient
}

// sdkClient is an SDK client with the RoundTripper that gives its current call a
// context. The SDK mutates any *http.Transport it is handed; it leaves other
// RoundTripper types alone, which is why the shared transport is wrapped.
type sdkClient struct {
	client *sdk.Client
	rt     *callTransport
}

// New makes a Client. It does not connect.
func New(cfg Config) (*Client, error) {
	ep, err := ParseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, err
	}
	if cfg.AccessKeyID == "" || cfg.AccessKeySecret == "" {
		return nil, errors.New("mPaaS AccessKey id and secret are required (MPAAS_AK_ENV, MPAAS_SK_ENV)")
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	tlsConfig := cfg.TLS
	if tlsConfig == nil {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	c := &Client{
		endpoint: ep,
		region:   cfg.Region,
		cred:     credentials.NewAccessKeyCredential(cfg.AccessKeyID, cfg.AccessKeySecret),
		timeout:  cfg.Timeout,
		transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   cfg.ConnectTimeout,
			MaxIdleConns:          cfg.MaxConns,
			MaxIdleConnsPerHost:   cfg.MaxConns,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			ForceAttemptHTTP2:     false, // the SDK's gateway speaks HTTP/1.1; many small calls pool better on it
		},
	}
	c.pool.New = func() any { return c.newSDKClient() }
	// Fail here, not on the first job, if the SDK refuses the settings.
	first := c.newSDKClient()
	if first.client == nil {
		return nil, fmt.Errorf("mPaaS client: region %q rejected by the SDK", cfg.Region)
	}
	c.pool.Put(first)
	return c, nil
}

func (c *Client) newSDKClient() *sdkClient {
	rt := &callTransport{base: c.transport}
	config := sdk.NewConfig()
	config.AutoRetry = false // retries happen in one place: the worker, with backoff
	config.Scheme = c.endpoint.Scheme
	config.Transport = rt
	config.Timeout = c.timeout
	client, err := sdk.NewClientWithOptions(c.region, config, c.cred)
	if err != nil {
		return &sdkClient{}
	}
	client.SetReadTimeout(c.timeout) // the SDK keeps a read timeout on the client, not the call
	client.Domain = c.endpoint.Host
	return &sdkClient{client: client, rt: rt}
}

// Endpoint is where this client sends calls.
func (c *Client) Endpoint() Endpoint { return c.endpoint }

// Close drops idle connections.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// CallResult is the classified answer to one call.
type CallResult struct {
	API        string // the action called: job.APITemplate, APIMultiple, APISimple or APIBroadcast
	Class      Class
	Throttled  bool // 8011 or Throttling*: the limiter should slow down
	MaybeSent  bool // the request went out and no answer came: mPaaS may have pushed
	HTTPStatus int  // 0 when no answer came

	RequestID     string
	ResultCode    string // ResultCode of a 200, or the gateway's error Code
	ResultMessage string
	PushSuccess   bool
	PushMessage   string // PushResult.ResultMsg
	Data          string // PushResult.Data: a scheduled push's task id

	Latency time.Duration
	Err     error // what went wrong, without secrets; nil on Success
}

// Push makes one call for targets of job j: PushTemplate (at most ten targets)
// or, for a targetMsgs job, PushMultiple (at most a hundred, each with its values
// from the job), PushSimple for a free-text job (ten), PushBroadcast for a
// broadcast (its one pair, job.BroadcastTarget and its msgKey). It never returns an error of its own: every failure is a CallResult
// with a Class.
func (c *Client) Push(ctx context.Context, j *job.Job, targets job.Targets) (out CallResult) {
	defer func() { out.API = j.API() }()
	if len(targets) == 0 || len(targets) > j.CallSize() {
		return CallResult{Class: JobFault, Err: fmt.Errorf("a %s call takes 1 to %d targets, not %d", j.API(), j.CallSize(), len(targets))}
	}
	var req requests.AcsRequest
	switch {
	case j.IsBroadcast():
		if targets[0].Target != job.BroadcastTarget || targets[0].MsgKey != j.Broadcast.MsgKey {
			return CallResult{Class: JobFault, Err: fmt.Errorf("job %s: a broadcast's call takes only its own msgKey", j.JobID)}
		}
		req = newBroadcastRequest(j)
	case j.Simple():
		req = newSimpleRequest(j, targets)
	case j.Multiple():
		msgs, ok := j.Messages(targets)
		if !ok {
			return CallResult{Class: JobFault, Err: fmt.Errorf("job %s: a call's target is not among the job's targetMsgs", j.JobID)}
		}
		req = newMultipleRequest(j, msgs)
	default:
		r, err := newTemplateRequest(j, targets)
		if err != nil {
			return CallResult{Class: JobFault, Err: err}
		}
		req = r
	}
	// PushMultiple, PushSimple and PushBroadcast answer in PushTemplate's shape
	// (RequestId, ResultCode, ResultMessage, PushResult): one response type reads all.
	resp := mpaas.CreatePushTemplateResponse()
	return c.do(ctx, j.API(), req, resp, func() answer {
		return answer{resp.RequestId, resp.ResultCode, resp.ResultMessage, &resp.PushResult}
	})
}

// answer is what a 200 of any action says; push is nil for an action whose
// answer has no PushResult.
type answer struct {
	requestID, code, message string
	push                     *mpaas.PushResult
}

// do makes one call of action api with a fresh request on a pooled SDK client
// and classifies the answer that read reads from resp.
func (c *Client) do(ctx context.Context, api string, req requests.AcsRequest, resp responses.AcsResponse, read func() answer) CallResult {
	if err := ctx.Err(); err != nil {
		return CallResult{API: api, Class: Transient, Err: err}
	}
	out := c.call(ctx, req, resp, read)
	out.API = api
	return out
}

func (c *Client) call(ctx context.Context, req requests.AcsRequest, resp responses.AcsResponse, read func() answer) CallResult {
	req.SetScheme(c.endpoint.Scheme)
	req.SetDomain(c.endpoint.Host)
	sc := c.pool.Get().(*sdkClient)
	defer c.pool.Put(sc)
	if sc.client == nil {
		return CallResult{Class: ConfigFault, Err: errors.New("mPaaS client could not be built")}
	}
	start := time.Now()
	sc.rt.begin(ctx)
	err := sc.client.DoAction(req, resp)
	wrote := sc.rt.end()
	out := CallResult{Latency: time.Since(start)}
	if err != nil {
		return classifyError(out, err, wrote)
	}
	a := read()
	out.HTTPStatus = resp.GetHttpStatus()
	out.RequestID, out.ResultCode, out.ResultMessage = a.requestID, a.code, a.message
	success := a.code == "OK"
	if a.push != nil {
		out.PushSuccess, out.PushMessage, out.Data = a.push.Success, a.push.ResultMsg, a.push.Data
		success = a.push.Success
	}
	out.Class, out.Throttled = classifyOK(a.code, success)
	if out.Class != Success {
		msg := a.message
		if a.push != nil {
			msg = nonEmpty(msg, a.push.ResultMsg)
		}
		out.Err = fmt.Errorf("mPaaS answered %s: %s", nonEmpty(a.code, "no code"), msg)
	}
	return out
}

func classifyError(out CallResult, err error, wrote bool) CallResult {
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		out.HTTPStatus = se.HttpStatus()
		out.RequestID = se.RequestId()
		out.ResultCode = se.ErrorCode()
		out.ResultMessage = se.Message()
		out.Class, out.Throttled = classifyGateway(out.HTTPStatus, out.ResultCode)
		out.Err = fmt.Errorf("mPaaS answered HTTP %d %s", out.HTTPStatus, nonEmpty(out.ResultCode, "with no code"))
		return out
	}
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) {
		// The answer came but could not be read: the push may have happened.
		out.Class, out.MaybeSent = Transient, true
		out.ResultCode = ce.ErrorCode()
		out.Err = fmt.Errorf("mPaaS answer unreadable: %s", ce.ErrorCode())
		return out
	}
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &certInvalid) {
		out.Class = ConfigFault
		out.Err = fmt.Errorf("mPaaS TLS certificate not trusted: %w", stripURL(err))
		return out
	}
	out.Class = Transient
	switch {
	case wrote:
		// A timeout or reset after the request went out: unknown outcome.
		out.MaybeSent = true
		out.Err = fmt.Errorf("no answer from mPaaS after the request was sent: %w", stripURL(err))
	case errors.Is(err, syscall.ECONNREFUSED):
		out.Err = fmt.Errorf("mPaaS refused the connection: %w", stripURL(err))
	default:
		out.Err = fmt.Errorf("mPaaS unreachable: %w", stripURL(err))
	}
	return out
}

// stripURL drops the request URL from a transport error: it holds the signature
// and AccessKey id, which belong in no log line.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func nonEmpty(s, fallback string) string {
	if s != "" {
		return s
	}
	return fallback
}

// callTransport gives the call in progress its context (the SDK takes none) and
// notes whether the request was written, to tell "refused" from "unknown outcome".
type callTransport struct {
	base  http.RoundTripper
	ctx   context.Context
	wrote atomic.Bool
	stops []func()
}

func (t *callTransport) begin(ctx context.Context) {
	t.ctx = ctx
	t.wrote.Store(false)
}

func (t *callTransport) end() (wrote bool) {
	for _, stop := range t.stops {
		stop()
	}
	t.stops = t.stops[:0]
	t.ctx = nil
	return t.wrote.Load()
}

func (t *callTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	parent := t.ctx
	if parent == nil {
		parent = context.Background()
	}
	// Keep the request's own deadline (the SDK's timeout) and add the caller's cancel.
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(parent, cancel)
	t.stops = append(t.stops, func() { stop(); cancel() })
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				t.wrote.Store(true)
			}
		},
	})
	return t.base.RoundTrip(r.WithContext(ctx))
}
