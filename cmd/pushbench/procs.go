package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/teststack"
)

// The servers of a run are processes of their own, so that /proc tells each
// one's CPU apart: the emulator (cmd/mpaas-sim), nats-server (the machine's
// binary, unless --nats-url names one), and the Redis the workers share (its
// process id from INFO, when it runs on this machine).

// cpuOf is the CPU time (user and system) process pid has used, from /proc.
func cpuOf(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name: utime and stime are the 12th and 13th, in
	// clock ticks (USER_HZ, 100 on Linux).
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// cpuMeter reads the CPU of a set of named processes at two moments.
type cpuMeter struct {
	pids  map[string][]int
	start map[string]time.Duration
}

func newMeter() *cpuMeter { return &cpuMeter{pids: map[string][]int{}} }

func (m *cpuMeter) add(name string, pid int) {
	if pid > 0 {
		m.pids[name] = append(m.pids[name], pid)
	}
}

func (m *cpuMeter) read() map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, pids := range m.pids {
		for _, pid := range pids {
			if d, err := cpuOf(pid); err == nil {
				out[name] += d
			}
		}
	}
	return out
}

// begin takes the first reading; since is each process's CPU from then.
func (m *cpuMeter) begin() { m.start = m.read() }

func (m *cpuMeter) since() map[string]time.Duration {
	now := m.read()
	for name, d := range now {
		now[name] = d - m.start[name]
	}
	return now
}

// startEmulator runs cmd/mpaas-sim on a free port with the run's faults.
func (b *bench) startEmulator(ctx context.Context) error {
	bin := b.o.simBin
	if bin == "" {
		b.logf("building the emulator")
		var err error
		if bin, err = teststack.Build(ctx, b.tempDir, "mpaas-sim"); err != nil {
			return err
		}
	}
	args := []string{"-addr", "127.0.0.1:0", "-latency", b.o.latency.String(), "-jitter", b.o.jitter.String(),
		"-quota", strconv.Itoa(b.o.quota)}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := teststack.Start(sctx, exec.Command(bin, args...), []string{"MPAAS_AK_ENV=" + benchKey, "MPAAS_SK_ENV=" + benchSecret},
		regexp.MustCompile(`on (http://[0-9.:]+) `), nil)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() { _ = p.Stop() })
	b.simURL, b.simPID = p.HTTPAddr, p.Cmd.Process.Pid
	return nil
}

// startNATS runs the machine's nats-server with JetStream in the run's temp dir,
// on a free port. With --nats-url it uses that server, whose CPU it cannot tell.
func (b *bench) startNATS(ctx context.Context) error {
	if b.o.natsURL != "" {
		b.natsURL = b.o.natsURL
		return nil
	}
	bin, err := exec.LookPath(b.o.natsBin)
	if err != nil {
		return fmt.Errorf("--nats-server %s: %w (install nats-server, or pass --nats-url)", b.o.natsBin, err)
	}
	dir := filepath.Join(b.tempDir, "nats")
	conf := filepath.Join(b.tempDir, "nats.conf")
	text := fmt.Sprintf("host: 127.0.0.1\nport: -1\nmax_payload: 8MB\njetstream { store_dir: %q }\n", dir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := teststack.Start(sctx, exec.Command(bin, "-c", conf), nil,
		regexp.MustCompile(`Listening for client connections on ([0-9.:]+)`), nil)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() { _ = p.Stop() })
	b.natsURL, b.natsPID = "nats://"+p.HTTPAddr, p.Cmd.Process.Pid
	return nil
}

func (b *bench) simStats(ctx context.Context) (mpaassim.Stats, error) {
	var st mpaassim.Stats
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.simURL+"/sim/stats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return st, fmt.Errorf("emulator stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("emulator stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (b *bench) simReset(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, b.simURL+"/sim/reset", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("emulator reset: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("emulator reset: %s", resp.Status)
	}
	return nil
}

// redisProbe reads what the run cost the workers' Redis: its process (when it is
// on this machine), its commands and its memory.
type redisProbe struct {
	rdb *redis.Client
	pid int
}

func newRedisProbe(ctx context.Context, redisURL string) (*redisProbe, error) {
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	p := &redisProbe{rdb: redis.NewClient(opts)}
	info, err := p.info(ctx, "server")
	if err != nil {
		p.rdb.Close()
		return nil, err
	}
	host := opts.Addr
	if u, err := url.Parse("//" + opts.Addr); err == nil {
		host = u.Hostname()
	}
	if pid, _ := strconv.Atoi(info.Item("Server", "process_id")); pid > 0 && (host == "127.0.0.1" || host == "localhost" || host == "::1") {
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.HasPrefix(string(comm), "redis") {
			p.pid = pid
		}
	}
	return p, nil
}

func (p *redisProbe) info(ctx context.Context, sections ...string) (*redis.InfoCmd, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := p.rdb.InfoMap(ctx, sections...)
	if err := cmd.Err(); err != nil {
		return nil, fmt.Errorf("redis INFO %s: %w", strings.Join(sections, " "), err)
	}
	return cmd, nil
}

// counters are Redis's used_memory and total_commands_processed.
func (p *redisProbe) counters(ctx context.Context) (memory, commands int64, err error) {
	info, err := p.info(ctx, "memory", "stats")
	if err != nil {
		return 0, 0, err
	}
	memory, _ = strconv.ParseInt(info.Item("Memory", "used_memory"), 10, 64)
	commands, _ = strconv.ParseInt(info.Item("Stats", "total_commands_processed"), 10, 64)
	return memory, commands, nil
}

func (p *redisProbe) close() { p.rdb.Close() }

// allocs writes the first worker's allocation profile to --allocprofile.
func (b *bench) allocs(ctx context.Context) error {
	if b.o.allocProfile == "" || len(b.workers) == 0 {
		return nil
	}
	return fetchTo(ctx, "http://"+b.workers[0].HTTPAddr+"/debug/pprof/allocs", b.o.allocProfile, 30*time.Second)
}

// fetchTo writes what GET u answers to file.
func fetchTo(ctx context.Context, u, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("worker profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("worker profile: %s", resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}

// profile fetches a CPU profile of the first worker for --profile-for into
// --cpuprofile, in the background; the channel gets its error, or nil.
func (b *bench) profile(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	if b.o.cpuProfile == "" || len(b.workers) == 0 {
		done <- nil
		return done
	}
	u := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.workers[0].HTTPAddr, max(1, int(b.o.profileFor.Seconds())))
	go func() { done <- fetchTo(ctx, u, b.o.cpuProfile, b.o.profileFor+30*time.Second) }()
	return done
}
