package teststack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// BuildWorker builds cmd/worker from this module into dir and returns the
// binary's path. It needs the go command and finds the module from its own source.
func BuildWorker(ctx context.Context, dir string) (string, error) { return Build(ctx, dir, "worker") }

// Build builds cmd/<name> from this module into dir and returns the binary's path.
func Build(ctx context.Context, dir, name string) (string, error) {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: %v\n%s", name, err, out)
	}
	return bin, nil
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// WorkerBinary builds cmd/worker once per test binary, into a folder of its own
// under the OS's temp folder, and returns its path.
func WorkerBinary() (string, error) { return Binary("worker") }

// Binary builds cmd/<name> once per test binary and returns its path.
func Binary(name string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[name]; ok {
		return bin, nil
	}
	dir, err := os.MkdirTemp("", "pushworker-bin")
	if err != nil {
		return "", err
	}
	bin, err := Build(context.Background(), dir, name)
	if err != nil {
		return "", err
	}
	built[name] = bin
	return bin, nil
}

// Process is a worker (or another server) running as its own process.
type Process struct {
	Cmd      *exec.Cmd
	HTTPAddr string // where /metrics, /healthz and /readyz listen (for another server: what its ready line named)
	log      *lockedBuffer
	done     chan struct{}
	err      error
}

var startedRE = regexp.MustCompile(`worker started.*http://([0-9.:\[\]]+)/metrics`)

// StartProcess runs bin with env (added to this process's environment) and waits
// until it says it started, or exits, or ctx ends. Its output goes to out (may be
// nil) and is kept for Log.
func StartProcess(ctx context.Context, bin string, env []string, out io.Writer) (*Process, error) {
	return Start(ctx, exec.Command(bin), env, startedRE, out)
}

// Start runs cmd with env added to this process's environment and waits until a
// line of its output matches ready (whose first group becomes HTTPAddr), or it
// exits, or ctx ends.
func Start(ctx context.Context, cmd *exec.Cmd, env []string, ready *regexp.Regexp, out io.Writer) (*Process, error) {
	p := &Process{Cmd: cmd, log: &lockedBuffer{}, done: make(chan struct{})}
	name := filepath.Base(cmd.Path)
	p.Cmd.Env = append(os.Environ(), env...)
	pipe, err := p.Cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.Cmd.Stderr = p.Cmd.Stdout
	if err := p.Cmd.Start(); err != nil {
		return nil, err
	}
	started := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.log.WriteLine(line)
			if out != nil {
				fmt.Fprintln(out, line)
			}
			if m := ready.FindStringSubmatch(line); m != nil {
				select {
				case started <- m[1]:
				default:
				}
			}
		}
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	select {
	case p.HTTPAddr = <-started:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before starting (%v):\n%s", name, p.err, p.log.String())
	case <-ctx.Done():
		p.Kill()
		return nil, fmt.Errorf("%s did not start: %w\n%s", name, ctx.Err(), p.log.String())
	}
}

// Stop sends SIGTERM and waits for the exit; it returns the exit error, if any.
func (p *Process) Stop() error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
	return p.err
}

// Kill ends the process at once, as a crash would, and waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Log is everything the process printed so far.
func (p *Process) Log() string { return p.log.String() }

// ErrStillRunning is Wait's answer when the process did not end in time.
var ErrStillRunning = errors.New("worker still running")

// Wait waits up to d for the process to end.
func (p *Process) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return ErrStillRunning
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) WriteLine(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(s)
	l.b.WriteByte('\n')
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
