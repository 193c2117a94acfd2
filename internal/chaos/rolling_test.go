//go:build chaos

package chaos

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/internal/teststack"
	"github.com/mpaas-push/pushworker/topology"
)

// A rolling deploy: SIGTERM to every worker with a 2 s grace while big jobs are
// mid-call, replacements started 2 s later, round after round. No pair is pushed
// twice, every job has one result, every worker exits 0 within the grace plus
// the call timeout. CHAOS_ROUNDS sets the rounds (default 3).
func TestRollingDeployPushesNothingTwice(t *testing.T) {
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("CHAOS_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for _, c := range []struct {
		name     string
		size     int
		multiple bool
		rate     string
	}{
		{"PushTemplate jobs of 500", 500, false, "100"},
		{"PushMultiple jobs of 1000", 1000, true, "20"},
	} {
		t.Run(c.name, func(t *testing.T) {
			const grace, callTimeout = 2 * time.Second, 5 * time.Second
			s := newScene(t, "", mpaassim.Faults{Latency: 30 * time.Millisecond})
			s.extraEnv = []string{"PUSH_SHUTDOWN_GRACE=" + grace.String(), "PUSH_MPAAS_TIMEOUT=" + callTimeout.String(), "PUSH_RATE_LIMIT=" + c.rate}
			workers := []*teststack.Process{s.startWorker(), s.startWorker(), s.startWorker()}
			for round := range rounds {
				app := fmt.Sprintf("roll%d", round)
				jobs := s.publishTo(topology.Default().BulkSubject(app), app, 6, c.size, c.multiple)
				s.waitCalls(app, 20)
				before := len(s.callsOf(app))
				var wg sync.WaitGroup
				exits := make([]time.Duration, len(workers))
				errs := make([]error, len(workers))
				at := time.Now()
				for i, w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						errs[i] = w.Stop()
						exits[i] = time.Since(at)
					}()
				}
				time.Sleep(2 * time.Second)
				workers = []*teststack.Process{s.startWorker(), s.startWorker(), s.startWorker()}
				wg.Wait()
				o := s.settle(jobs, 2*time.Minute)
				t.Logf("round %d: %d calls before the SIGTERM; exits after %v; %d pairs twice", round+1, before, exits, o.twice)
				for i := range exits {
					if errs[i] != nil || exits[i] > grace+callTimeout+2*time.Second {
						t.Fatalf("round %d: a worker must exit 0 within the grace plus the call timeout: %v after %s", round+1, errs[i], exits[i])
					}
				}
				if o.twice != 0 || o.results != len(jobs) || o.sent+o.duplicates+o.failed != o.targets {
					t.Fatalf("round %d: no pair twice, one whole result per job: %+v", round+1, o)
				}
			}
		})
	}
}
