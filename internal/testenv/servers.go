package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/redis/go-redis/v9"
)

// FreePort is a loopback TCP port nothing listens on right now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RedisServer is a redis-server of the test's own, on a free port, that the test
// may stop and start again (empty: it keeps nothing on disk).
type RedisServer struct {
	t    testing.TB
	Port int
	cmd  *exec.Cmd
	args []string    // more redis-server arguments
	dir  string      // its working folder
	tls  *tls.Config // set when the server speaks TLS only
}

// StartRedis starts a redis-server, or skips (fails in CI) when there is none.
func StartRedis(t testing.TB) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Unavailable(t, "redis-server", err)
	}
	r := &RedisServer{t: t, Port: FreePort(t)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// StartRedisTLS starts a redis-server that speaks TLS only, with certificates
// from certs (clients need not show one).
func StartRedisTLS(t testing.TB, certs Certs) *RedisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		Unavailable(t, "redis-server", err)
	}
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(pem)
	r := &RedisServer{t: t, Port: FreePort(t), tls: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	r.args = []string{"--port", "0", "--tls-port", strconv.Itoa(r.Port), "--tls-cert-file", certs.ServerCert,
		"--tls-key-file", certs.ServerKey, "--tls-ca-cert-file", certs.CA, "--tls-auth-clients", "no"}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Addr is host:port.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Start starts the server (again) on its port and waits until it answers.
func (r *RedisServer) Start() {
	r.t.Helper()
	if r.dir == "" {
		r.dir = r.t.TempDir() // a replica's sync writes dump.rdb there, not in the package's folder
	}
	args := append([]string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"}, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), TLSConfig: r.tls})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server on %s did not answer: %v", r.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Freeze stops the server with SIGSTOP: its connections stay open and nothing
// answers, as with a host that hangs or a network that drops every packet.
func (r *RedisServer) Freeze() { r.signal(syscall.SIGSTOP) }

// Thaw lets a frozen server go on (SIGCONT).
func (r *RedisServer) Thaw() { r.signal(syscall.SIGCONT) }

func (r *RedisServer) signal(sig os.Signal) {
	r.t.Helper()
	if r.cmd == nil || r.cmd.Process == nil {
		r.t.Fatalf("redis-server on %s is not running", r.Addr())
	}
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

// Stop kills the server at once, as a crash would.
func (r *RedisServer) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// NATS starts an embedded NATS server with JetStream on a free loopback port, with
// its store in a temporary folder, and shuts it down when the test ends.
func NATS(t testing.TB) *server.Server {
	t.Helper()
	return NATSWith(t, &server.Options{})
}

// NATSWith starts an embedded server from opts (JetStream, host, port and store
// folder are filled in when unset).
func NATSWith(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	opts.JetStream = true
	return startNATS(t, opts)
}

// NATSPlain starts an embedded server from opts without JetStream (for login
// tests: an operator-mode server with JetStream needs a system account).
func NATSPlain(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	return startNATS(t, opts)
}

func startNATS(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = -1
	}
	if opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

// MachineNATS is the machine's NATS server (2.9), or a skip (a failure in CI).
func MachineNATS(t testing.TB) string {
	t.Helper()
	const url = "nats://127.0.0.1:4222"
	c, err := net.DialTimeout("tcp", "127.0.0.1:4222", time.Second)
	if err != nil {
		Unavailable(t, "the machine's NATS at "+url, err)
	}
	c.Close()
	return url
}
