package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStatusRule(t *testing.T) {
	cases := []struct {
		sent, dup, failed int
		want              Status
	}{
		{1, 0, 0, StatusSucceeded},
		{0, 3, 0, StatusSucceeded},
		{0, 0, 0, StatusSucceeded},
		{0, 0, 2, StatusFailed},
		{1, 0, 2, StatusPartial},
		{0, 1, 2, StatusPartial},
	}
	for _, c := range cases {
		if got := StatusOf(c.sent, c.dup, c.failed); got != c.want {
			t.Errorf("StatusOf(%d,%d,%d) = %s, want %s", c.sent, c.dup, c.failed, got, c.want)
		}
	}
}

func TestResultAccounting(t *testing.T) {
	j := validJob()
	j.JobID = "j1"
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	r := NewResult(j, 2, start)
	r.AddChunk(ChunkResult{TargetMsgkey: manyTargets(10), Status: ChunkSent, Attempts: 1, RequestID: "R1", ResultCode: "OK", PushSuccess: true})
	r.AddChunk(ChunkResult{TargetMsgkey: manyTargets(3), Status: ChunkFailed, Attempts: 1, ResultCode: "3022", Error: "TEMPLATE_NOT_EXIST"})
	r.AddSkipped(Target{"dup", "k"})
	r.Finish(start.Add(120 * time.Millisecond))
	if r.Targets != 14 || r.Sent != 10 || r.Failed != 3 || r.Duplicates != 1 || r.Status != StatusPartial {
		t.Fatalf("accounting wrong: %+v", r)
	}
	b, _ := json.Marshal(r)
	s := string(b)
	for _, want := range []string{
		`"startedAt":"2026-11-27T10:00:00.000Z"`, `"finishedAt":"2026-11-27T10:00:00.120Z"`,
		`"skipped":{"dup":"k"}`, `"deliveries":2`, `"status":"partial"`, `"targets":14`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("result JSON lacks %s: %s", want, s)
		}
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Chunks, r.Chunks) || !back.StartedAt.Equal(r.StartedAt.Time) {
		t.Fatalf("result does not round-trip")
	}
}

func TestEmptyResultHasEmptyCollections(t *testing.T) {
	j := validJob()
	j.JobID = "j2"
	b, _ := json.Marshal(NewResult(j, 1, time.Now()).Finish(time.Now()))
	if !strings.Contains(string(b), `"chunks":[]`) || !strings.Contains(string(b), `"skipped":{}`) {
		t.Fatalf("empty chunks and skipped must be [] and {}: %s", b)
	}
}

func TestRejected(t *testing.T) {
	j, err := Decode([]byte(withMembers(`"APPID":"x"`)))
	r := Rejected("seq-7", j, err, 1, time.Now())
	if r.Status != StatusRejected || r.Targets != 1 || r.Failed != 1 || r.Sent != 0 || len(r.Chunks) != 0 {
		t.Fatalf("rejected result wrong: %+v", r)
	}
	if !strings.HasPrefix(r.Error, "APPID: unknown field") {
		t.Fatalf("error must name the field: %q", r.Error)
	}
	r = Rejected("seq-8", nil, errors.New("job is not a JSON object: x"), 1, time.Now())
	if r.Targets != 0 || r.Failed != 0 || r.Status != StatusRejected {
		t.Fatalf("unreadable job: %+v", r)
	}
}

func TestChunk(t *testing.T) {
	for _, n := range []int{0, 1, 9, 10, 11, 25, 100, 1000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			targets := manyTargets(n)
			chunks := Chunk(targets, MaxTargetsPerCall)
			if want := (n + 9) / 10; len(chunks) != want {
				t.Fatalf("%d chunks, want %d", len(chunks), want)
			}
			var joined Targets
			for i, c := range chunks {
				if len(c) == 0 || len(c) > 10 {
					t.Fatalf("chunk %d has %d targets", i, len(c))
				}
				if i < len(chunks)-1 && len(c) != 10 {
					t.Fatalf("chunk %d has %d targets; only the last may be short", i, len(c))
				}
				joined = append(joined, c...)
			}
			if n > 0 && !reflect.DeepEqual(joined, targets) {
				t.Fatal("chunks do not give back the targets in order")
			}
			if again := Chunk(targets, MaxTargetsPerCall); !reflect.DeepEqual(again, chunks) {
				t.Fatal("the same list gave different chunks")
			}
		})
	}
	sizes := []int{}
	for _, c := range Chunk(manyTargets(25), 10) {
		sizes = append(sizes, len(c))
	}
	if !reflect.DeepEqual(sizes, []int{10, 10, 5}) {
		t.Fatalf("25 targets → %v, want [10 10 5]", sizes)
	}
	sizes = sizes[:0]
	for _, c := range Chunk(manyTargets(250), MaxTargetsPerMultipleCall) {
		sizes = append(sizes, len(c))
	}
	if !reflect.DeepEqual(sizes, []int{100, 100, 50}) {
		t.Fatalf("250 targets in PushMultiple calls → %v, want [100 100 50]", sizes)
	}
	if got := len(Chunk(manyTargets(250), 500)); got != 3 {
		t.Fatalf("a size above 100 must be capped at 100: %d chunks", got)
	}
	// Appending to a chunk must not overwrite the next one.
	chunks := Chunk(manyTargets(20), 10)
	_ = append(chunks[0], Target{"x", "y"})
	if chunks[1][0].Target != "u10" {
		t.Fatal("chunks share capacity")
	}
}

// A chunk carries the job's strategyType when it was not 0, so that recall
// knows a scheduled task id from a push task id; results stored before the field
// existed still decode, as immediate pushes.
func TestChunksCarryTheStrategyType(t *testing.T) {
	for _, st := range []*int64{nil, Int64(0), Int64(1), Int64(2)} {
		j := validJob()
		j.JobID, j.StrategyType = "s", st
		r := NewResult(j, 1, time.Now())
		r.AddChunk(ChunkResult{TargetMsgkey: manyTargets(2), Status: ChunkSent, Data: "0123456789abcdef0123456789abcdef"})
		b, _ := json.Marshal(r.Finish(time.Now()))
		want := int64(0)
		if st != nil {
			want = *st
		}
		if has := strings.Contains(string(b), `"strategyType":`); has != (want != 0) {
			t.Fatalf("strategyType %v: %s", st, b)
		}
		var back Result
		if err := json.Unmarshal(b, &back); err != nil || back.Chunks[0].StrategyType != want || back.Chunks[0].Scheduled() != (want != 0) {
			t.Fatalf("strategyType %v round trip: %v %+v", st, err, back.Chunks)
		}
	}
	old := `{"jobId":"o","status":"succeeded","chunks":[{"targetMsgkey":{"u":"k"},"status":"sent","data":"0123456789abcdef0123456789abcdef"}]}`
	var r Result
	if err := json.Unmarshal([]byte(old), &r); err != nil || r.Chunks[0].StrategyType != 0 || r.Chunks[0].Scheduled() {
		t.Fatalf("an old result: %v %+v", err, r.Chunks)
	}
}

// Admin jobs' task ids are opaque: a 32-hex push task id and a numeric one are
// both taken; only what no id can be is refused, naming the element.
func TestAdminTaskIDsAreOpaque(t *testing.T) {
	for _, c := range []struct {
		a     Admin
		field string
	}{
		{Admin{Action: ActionRevoke, TaskIDs: []string{"90000001", "0123456789abcdef0123456789abcdef"}}, ""},
		{Admin{Action: ActionCancelScheduled, UniqueIDs: []string{"0123456789abcdef0123456789abcdef", "90000001"}}, ""},
		{Admin{Action: ActionRevoke, TaskIDs: []string{"1", ""}}, "taskIds[1]"},
		{Admin{Action: ActionRevoke, TaskIDs: []string{"1 2"}}, "taskIds[0]"},
		{Admin{Action: ActionCancelScheduled, UniqueIDs: []string{"a,b"}}, "uniqueIds[0]"},
		{Admin{Action: ActionCancelScheduled, UniqueIDs: []string{strings.Repeat("a", MaxTaskIDLength+1)}}, "uniqueIds[0]"},
		{Admin{Action: ActionRevoke, TaskIDs: []string{"7", "7"}}, "taskIds[1]"},
	} {
		c.a.JobID, c.a.AppID, c.a.WorkspaceID = "adm", "a", "w"
		err := c.a.Validate(Rules{})
		if c.field == "" && err != nil || c.field != "" && (err == nil || !strings.HasPrefix(err.Error(), c.field+":")) {
			t.Errorf("%+v: want %q, got %v", c.a, c.field, err)
		}
	}
}
