package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mpaas-push/pushworker/internal/mpaassim"
)

// How a job file is split: one object (however many lines), JSON Lines, or one
// object with a syntax error reported once, at its line and column.
func TestRecords(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []int // lines of the records
		err        string
	}{
		{"one object on many lines", "\n{\n  \"a\": 1,\n  \"b\": 2\n}\n", []int{1}, ""},
		{"JSON Lines", "{\"a\":1}\n\n{\"b\":2}\n{bad\n", []int{1, 3, 4}, ""},
		{"one object, a comma missing", "{\n  \"a\": 1\n  \"b\": 2\n}\n", []int{3}, `3:3: invalid character '"' after object key:value pair`},
		{"one object cut short", "{\n  \"名\": \"张三\",\n", []int{2}, "2:13: unexpected end of JSON input"},
		{"not an object", "[1,\n2\n", []int{1, 2}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := records([]byte(tc.data))
			var lines []int
			for _, r := range recs {
				lines = append(lines, r.line)
			}
			if len(lines) != len(tc.want) || !equalInts(lines, tc.want) {
				t.Fatalf("lines %v, want %v", lines, tc.want)
			}
			if tc.err == "" {
				for _, r := range recs {
					if r.err != nil {
						t.Fatalf("unexpected error %v", r.err)
					}
				}
				return
			}
			if got := fmt.Sprintf("%d:%d: %v", recs[0].line, recs[0].col, recs[0].err); recs[0].err == nil || got != tc.err {
				t.Fatalf("error %s, want %s", got, tc.err)
			}
		})
	}
}

// enqueue publish of a pretty-printed job with a missing comma on line 7 says
// so once, at the comma, instead of failing every line as JSON Lines.
func TestPublishReportsASyntaxErrorAtItsLineAndColumn(t *testing.T) {
	t.Parallel()
	s := newStack(t, mpaassim.Faults{})
	body := "{\n" +
		"  \"jobId\": \"syntax-1\",\n" +
		"  \"taskName\": \"t\",\n" +
		"  \"appId\": \"a\",\n" +
		"  \"workspaceId\": \"w\",\n" +
		"  \"deliveryType\": 3\n" + // the comma is missing here
		"  \"targetMsgkey\": {\"u1\": \"k1\"},\n" +
		"  \"expiredSeconds\": 60,\n" +
		"  \"templateName\": \"n\"\n" +
		"}\n"
	path := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := s.enqueue(t, "", path)
	if err == nil || !strings.Contains(err.Error(), "no valid job to publish (1 rejected)") {
		t.Fatalf("want no job published and one rejected: %v\n%s", err, stderr)
	}
	want := path + `:7:3: invalid character '"' after object key:value pair`
	if strings.TrimSpace(stderr) != want {
		t.Fatalf("stderr:\n%s\nwant the one line\n%s", stderr, want)
	}
}

func equalInts(a, b []int) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}
