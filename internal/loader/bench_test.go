package loader

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mpaas-push/pushworker/job"
)

type discard struct{}

func (discard) Publish(context.Context, string, int, []byte) error { return nil }

// BenchmarkLoadCSVPersonal reads, groups, validates and encodes 100,000 rows
// whose template values all differ into PushTemplate jobs (one job per row),
// with no broker.
//
//	go test -run '^$' -bench LoadCSV -benchmem ./internal/loader
func BenchmarkLoadCSVPersonal(b *testing.B) { benchmarkLoad(b, true, job.APITemplate) }

// BenchmarkLoadCSVPersonalMultiple is the personal file into PushMultiple jobs of 1,000.
func BenchmarkLoadCSVPersonalMultiple(b *testing.B) { benchmarkLoad(b, true, job.APIMultiple) }

// BenchmarkLoadCSVShared is the same with identical template values (jobs of 1,000).
func BenchmarkLoadCSVShared(b *testing.B) { benchmarkLoad(b, false, job.APITemplate) }

func benchmarkLoad(b *testing.B, personal bool, api string) {
	const rows = 100000
	var sb strings.Builder
	sb.WriteString("target,name,money\n")
	for i := range rows {
		if personal {
			fmt.Fprintf(&sb, "user%d,name-%d,%d\n", i, i, i)
		} else {
			fmt.Fprintf(&sb, "user%d,张三,200\n", i)
		}
	}
	csv := sb.String()
	b.SetBytes(int64(len(csv)))
	b.ResetTimer()
	for range b.N {
		_, err := LoadCSV(context.Background(), strings.NewReader(csv), Options{
			Campaign: Campaign{ID: "bench", Base: base(), API: api, GroupSize: 1000, Window: 100000}, Sink: discard{}})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
