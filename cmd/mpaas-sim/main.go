// Command mpaas-sim serves the project's mPaaS PushTemplate emulator: it checks
// signatures and parameters like mPaaS, injects faults on demand and counts every
// delivered push. Point the worker at it with MPAAS_ENDPOINT=http://ADDR.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mpaas-push/pushworker/internal/cmdmain"
	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
)

func main() { cmdmain.Main("mpaas-sim", run) }

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mpaas-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: mpaas-sim [flags]

Serves an mPaaS PushTemplate emulator. It accepts the AccessKey in MPAAS_AK_ENV and
MPAAS_SK_ENV (or its own key sim-access-key / sim-access-secret when they are unset),
and with -credentials every AccessKey of a worker's credentials file.
Faults can also be changed while it runs: PUT /sim/faults with a JSON body such as
{"latency":"50ms","rate5xx":0.25}. GET /sim/stats counts calls and deliveries.

Flags:
`)
		fs.PrintDefaults()
	}
	var (
		addr      = fs.String("addr", "127.0.0.1:18080", "listen address")
		templates = fs.String("templates", "", "JSON file of templates {\"name\": \"text with #variable#\"}; without it every template is accepted")
		hexIDs    = fs.Bool("hex-ids", false, "immediate pushes answer a 32-hex task id as data (the form of a scheduled task's id); without it PushMultiple answers a number and PushTemplate nothing")
		f         mpaassim.Faults
		a         mpaassim.Analysis
	)
	fs.DurationVar(&a.Delay, "analysis-delay", 0, "how long after a push its delivery figures appear (QueryPushAnalysisTaskDetail, QueryPushAnalysisCoreIndex)")
	fs.DurationVar(&f.Latency, "latency", 0, "added to every answer")
	fs.DurationVar(&f.Jitter, "jitter", 0, "random extra latency, uniform in [0, jitter]")
	fs.Float64Var(&f.Rate5xx, "rate-5xx", 0, "share of calls answered 500/503")
	fs.Float64Var(&f.RateThrottle, "rate-throttle", 0, "share of calls answered 400 Throttling.User")
	fs.Float64Var(&f.Rate8011, "rate-8011", 0, "share of calls answered 200 with 8011 FLOW_CONTROL_ERROR")
	fs.Float64Var(&f.RateTimeout, "rate-timeout", 0, "share of calls recorded as pushed and then left unanswered")
	fs.DurationVar(&f.TimeoutHold, "timeout-hold", mpaassim.DefaultTimeoutHold, "how long an unanswered call is held")
	fs.IntVar(&f.QuotaPerSecond, "quota", 0, "calls per second past which calls get Throttling.User (0: none)")
	credentials := fs.String("credentials", "", "a worker's MPAAS_CREDENTIALS_FILE: accept each of its AccessKeys (secrets read from its secretFile or secretEnv)")
	fs.Func("quota-per-key", "an AccessKey's own quota, ID=N calls per second past which its calls get Throttling.User; repeat for several keys", func(v string) error {
		id, n, ok := strings.Cut(v, "=")
		q, err := strconv.Atoi(n)
		if !ok || id == "" || err != nil || q < 1 {
			return errors.New("want ACCESS_KEY_ID=CALLS_PER_SECOND")
		}
		if f.QuotaPerKey == nil {
			f.QuotaPerKey = map[string]int{}
		}
		f.QuotaPerKey[id] = q
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := mpaassim.Config{Faults: f, Analysis: a, AcceptAnyTemplate: *templates == "", HexTaskIDs: *hexIDs}
	keyID, secret := getenv("MPAAS_AK_ENV"), getenv("MPAAS_SK_ENV")
	if (keyID == "") != (secret == "") {
		return errors.New("set both MPAAS_AK_ENV and MPAAS_SK_ENV, or neither")
	}
	if keyID == "" {
		keyID, secret = mpaassim.OwnKeyID, mpaassim.OwnKeySecret // used when MPAAS_AK_ENV and MPAAS_SK_ENV are unset
	}
	cfg.Keys = map[string]string{keyID: secret}
	if *credentials != "" {
		creds, err := config.LoadCredentials(*credentials, getenv)
		if err != nil {
			return err
		}
		for _, c := range creds {
			cfg.Keys[c.AccessKeyID] = c.Secret
			keyID += ", " + c.AccessKeyID
		}
	}
	if *templates != "" {
		b, err := os.ReadFile(*templates)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &cfg.Templates); err != nil {
			return fmt.Errorf("-templates %s: want a JSON object of name → text: %w", *templates, err)
		}
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mpaassim.New(cfg), ReadHeaderTimeout: 10 * time.Second}
	mode := "every template accepted"
	if !cfg.AcceptAnyTemplate {
		mode = fmt.Sprintf("%d templates from %s", len(cfg.Templates), *templates)
	}
	fmt.Fprintf(stdout, "mpaas-sim: serving PushTemplate and PushMultiple on http://%s (AccessKey id %s, %s)\n", l.Addr(), keyID, mode)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}
