//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
	"github.com/mpaas-push/pushworker/job"
	"github.com/mpaas-push/pushworker/topology"
)

// hostile is the n-th message of a producer that sends anything: random bytes,
// deep nesting, invalid UTF-8, NUL, huge numbers, 900 KB strings and field
// names, target lists over the cap.
func hostile(n int, r *rand.Rand) []byte {
	base := `"taskName":"t","appId":"hostile","workspaceId":"w","deliveryType":3,"expiredSeconds":60,"templateName":"n"`
	switch n % 9 {
	case 0:
		b := make([]byte, 1+r.IntN(2000))
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		return b
	case 1:
		return []byte(strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000))
	case 2:
		return []byte(`{` + base + `,"targetMsgkey":{"u` + strconv.Itoa(n) + "\xff\xfe" + `":"m"}}`)
	case 3:
		return []byte(`{` + base + ",\"targetMsgkey\":{\"u\x00" + strconv.Itoa(n) + `":"m"},"notifyType":"a\u0000b"}`)
	case 4:
		return []byte(`{"taskName":"t","appId":"hostile","workspaceId":"w","deliveryType":1e400,"expiredSeconds":123456789012345678901234567890,"templateName":"n","targetMsgkey":{"u":"m"}}`)
	case 5:
		if n%90 == 5 { // a few of the biggest, so that the streams stay small
			return []byte(`{` + base + `,"targetMsgkey":{"u":"m"},"taskName2":"` + strings.Repeat("x", 900<<10) + `"}`)
		}
		return []byte(`{` + base + `,"targetMsgkey":{"u":"` + strings.Repeat("m", 5000) + `"}}`)
	case 6:
		if n%90 == 6 {
			return []byte(`{` + base + `,"targetMsgkey":{"u":"m"},"` + strings.Repeat("\u0085", 300<<10) + `":1}`)
		}
		return []byte(`{` + base + `,"targetMsgkey":{"u":"m"},"` + strings.Repeat("f", 3000) + `":1}`)
	case 7:
		var b strings.Builder
		b.WriteString(`{` + base + `,"targetMsgkey":{`)
		for i := range 5000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"h%d-%d":"m"`, n, i)
		}
		b.WriteString(`}}`)
		return []byte(b.String())
	default:
		return []byte(`{"jobId":` + strconv.Itoa(n) + `,` + base + `}`)
	}
}

// 5,000 hostile messages among 100 good jobs, on one worker process: every
// message ends with a result or a dead letter, the good jobs succeed, and the
// worker's longest log line stays short. HOSTILE_MESSAGES sets the count.
func TestHostileInput(t *testing.T) {
	count := 5000
	if v, err := strconv.Atoi(os.Getenv("HOSTILE_MESSAGES")); err == nil && v > 0 {
		count = v
	}
	s := newScene(t, "", mpaassim.Faults{})
	w := s.startWorker()
	nc, js := s.conn()
	defer nc.Close()
	r := rand.New(rand.NewPCG(1, 2))
	topo := topology.Default()
	published := map[string]time.Time{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	good := 0
	for i := range count + 100 {
		var body []byte
		id := fmt.Sprintf("m-%d", i)
		if i%(count/100+1) == 0 && good < 100 {
			j := &job.Job{JobID: "good-" + strconv.Itoa(good), TaskName: "t", AppID: "good", WorkspaceID: "w", DeliveryType: 3,
				ExpiredSeconds: 60, TemplateName: "n", TargetMsgkey: job.Targets{{Target: "g" + strconv.Itoa(good), MsgKey: "m"}}}
			body, _ = j.Encode()
			id = j.JobID
			good++
		} else {
			body = hostile(i, r)
		}
		published[id] = time.Now()
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: topo.EventsSubject("hostile"), Data: body,
			Header: nats.Header{jetstream.MsgIDHeader: []string{id}}}); err != nil {
			t.Fatalf("publishing %s (%d bytes): %v", id, len(body), err)
		}
	}
	total := len(published)
	// Every message: a result (good ones succeeded, the others rejected), and a
	// dead letter for each rejected one.
	var latencies []time.Duration
	results, rejected := 0, 0
	deadline := time.Now().Add(4 * time.Minute)
	for results < total && time.Now().Before(deadline) {
		results, rejected, latencies = 0, 0, latencies[:0]
		s.readResults(js, func(res job.Result, _ uint64) {
			results++
			if res.Status == job.StatusRejected {
				rejected++
			} else if at, ok := published[res.JobID]; ok && strings.HasPrefix(res.JobID, "good-") && res.Status == job.StatusSucceeded {
				latencies = append(latencies, res.FinishedAt.Sub(at))
			}
		})
		if results < total {
			time.Sleep(time.Second)
		}
	}
	dlq, err := js.Stream(ctx, topo.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := js.Stream(ctx, topo.JobsStream)
	jinfo, _ := jobs.Info(ctx)
	slices.Sort(latencies)
	p99 := time.Duration(0)
	if len(latencies) > 0 {
		p99 = latencies[len(latencies)*99/100]
	}
	longest := 0
	for _, line := range strings.Split(w.Log(), "\n") {
		longest = max(longest, len(line))
	}
	rss := peakRSS(w.Cmd.Process.Pid)
	t.Logf("%d messages (%d hostile): %d results (%d rejected), %d dead letters, %d left in the job stream; good jobs %d, publish→finish p99 %v; worker peak RSS %d KB; longest log line %d bytes",
		total, total-100, results, rejected, info.State.Msgs, jinfo.State.Msgs, len(latencies), p99, rss, longest)
	if results != total || len(latencies) != 100 || int(info.State.Msgs) < rejected || jinfo.State.Msgs != 0 {
		t.Fatalf("every message a result or a dead letter, every good job succeeded: %d results of %d, %d good, %d dead letters for %d rejected, %d left",
			results, total, len(latencies), info.State.Msgs, rejected, jinfo.State.Msgs)
	}
	if longest > 4096 {
		t.Fatalf("a log line of %d bytes: echoes of the input must be clipped", longest)
	}
}

// peakRSS is a process's peak resident set in KB (VmHWM), or 0.
func peakRSS(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
