package worker

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mpaas-push/pushworker/internal/config"
	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

type devNATS struct {
	url, dir string
	stop     func()
}

// startDevNATS is dev mode's JetStream server, on loopback only.
func startDevNATS(dataDir string, port int) (*devNATS, error) {
	dir := filepath.Join(dataDir, "nats")
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		return nil, fmt.Errorf("dev mode: starting the embedded NATS server on 127.0.0.1:%d: %w", port, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("dev mode: starting the embedded NATS server on 127.0.0.1:%d: not ready in 10s (is the port taken? run one dev worker at a time)", port)
	}
	return &devNATS{url: ns.ClientURL(), dir: dir, stop: func() { ns.Shutdown(); ns.WaitForShutdown() }}, nil
}

type emulator struct {
	url  string
	stop func()
}

// startEmulator serves the mPaaS emulator on a free loopback port.
func startEmulator() (*emulator, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mpaassim.New(mpaassim.Config{Keys: map[string]string{mpaassim.OwnKeyID: mpaassim.OwnKeySecret}, AcceptAnyTemplate: true}),
		ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &emulator{url: "http://" + l.Addr().String(), stop: func() { _ = srv.Close() }}, nil
}

func jobRules(c *config.Worker, topo topology.Topology) job.Rules {
	r := job.Rules{MaxTargets: c.MaxTargets, MaxScheduledChunks: c.MaxScheduledChunks, Zone: c.Zone, Topology: topo}
	if len(c.Credentials) > 0 {
		served := map[string]bool{}
		for _, cr := range c.Credentials {
			for _, app := range cr.AppIDs {
				served[app] = true
			}
		}
		r.Served = func(app string) bool { return served[app] }
	}
	return r
}
