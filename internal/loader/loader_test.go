package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mpaas-push/pushworker/job"
)

func base() *job.Job {
	return &job.Job{TaskName: "spring", AppID: "A", WorkspaceID: "W", TemplateName: "T", DeliveryType: 3, ExpiredSeconds: 3600}
}

// collect is a Sink that keeps the jobs.
type collect struct{ jobs []*job.Job }

func (c *collect) Publish(_ context.Context, _ string, _ int, body []byte) error {
	j, err := job.Decode(body)
	if err != nil {
		return err
	}
	c.jobs = append(c.jobs, j)
	return nil
}

func load(t *testing.T, csv string, groupSize, window int) (*collect, Summary, string) {
	t.Helper()
	sink := &collect{}
	var rejects bytes.Buffer
	sum, err := LoadCSV(context.Background(), strings.NewReader(csv), Options{
		Campaign: Campaign{ID: "spring", Base: base(), GroupSize: groupSize, Window: window},
		Sink:     sink, Rejects: &rejects,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sink, sum, rejects.String()
}

func TestGroupingByTemplateValues(t *testing.T) {
	csv := "target,name,money\n" +
		"u1,张三,200\nu2,李四,100\nu3,张三,200\nu4,张三,200\nu5,李四,100\nu6,王五,1\n"
	sink, sum, _ := load(t, csv, 2, 100)
	if sum.Rows != 6 || sum.Jobs != 4 || sum.Targets != 6 || sum.Rejected != 0 {
		t.Fatalf("summary %+v", sum)
	}
	got := []string{}
	for _, j := range sink.jobs {
		var targets []string
		for _, tg := range j.TargetMsgkey {
			targets = append(targets, tg.Target)
		}
		got = append(got, fmt.Sprintf("%s=%s", strings.Join(targets, "+"), j.TemplateKeyValue))
	}
	// Full groups go out as they fill; the rest at the end, oldest open group first.
	want := []string{
		`u1+u3={"name":"张三","money":"200"}`,
		`u2+u5={"name":"李四","money":"100"}`,
		`u4={"name":"张三","money":"200"}`,
		`u6={"name":"王五","money":"1"}`,
	}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Fatalf("jobs:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestWindowFlushesTheOldestGroupEarly(t *testing.T) {
	csv := "target,v\nu1,a\nu2,b\nu3,c\nu4,a\n"
	sink, sum, _ := load(t, csv, 10, 2) // at most 2 rows held: a goes out when c arrives
	if sum.Jobs != 4 {
		t.Fatalf("want 4 jobs (a flushed early, then b, c, a again), got %d", sum.Jobs)
	}
	if sink.jobs[0].JobID == sink.jobs[3].JobID || sink.jobs[0].TargetMsgkey[0].Target != "u1" || sink.jobs[3].TargetMsgkey[0].Target != "u4" {
		t.Fatalf("jobs %v %v", sink.jobs[0].JobID, sink.jobs[3].JobID)
	}
	// A job is named by the line of its first row: u1 is on line 2, u4 on line 5.
	if !strings.HasPrefix(sink.jobs[0].JobID, "spring.t2.") || !strings.HasPrefix(sink.jobs[3].JobID, "spring.t5.") {
		t.Fatalf("jobs must be named by their first row's line: %s %s", sink.jobs[0].JobID, sink.jobs[3].JobID)
	}
}

func TestIDsAreDeterministic(t *testing.T) {
	csv := "target,name\nu1,x\nu2,y\nu3,x\n"
	a, _, _ := load(t, csv, 1000, 1000)
	b, _, _ := load(t, csv, 1000, 1000)
	for i := range a.jobs {
		if a.jobs[i].JobID != b.jobs[i].JobID || a.jobs[i].TargetMsgkey[0].MsgKey != b.jobs[i].TargetMsgkey[0].MsgKey {
			t.Fatal("the same file must give the same job ids and msgKeys")
		}
		if !job.ValidJobID(a.jobs[i].JobID) || !strings.HasPrefix(a.jobs[i].JobID, "spring.") {
			t.Fatalf("job id %q", a.jobs[i].JobID)
		}
	}
	if a.jobs[0].JobID == a.jobs[1].JobID {
		t.Fatal("two groups share a job id")
	}
	if DeriveMsgKey("spring", "u1") == DeriveMsgKey("summer", "u1") || DeriveMsgKey("spring", "u1") == DeriveMsgKey("spring", "u2") {
		t.Fatal("derived msgKeys must differ by campaign and target")
	}
	if groupKey([]string{"a,b"}) == groupKey([]string{"a", "b"}) {
		t.Fatal(`("a,b") and ("a","b") must not share a group`)
	}
}

func TestCSVQuirks(t *testing.T) {
	csv := "\ufefftarget,msgKey,姓名,备注\r\n" +
		"u1,k1,张三,\"with, comma\"\r\n" +
		"u2,,\"李\"\"四\",\"line\r\nbreak\"\r\n" +
		"\"u3\",k3,王五,plain\r\n"
	sink, sum, rejects := load(t, csv, 1, 100)
	if sum.Rows != 3 || sum.Jobs != 3 || sum.Rejected != 0 {
		t.Fatalf("summary %+v, rejects %s", sum, rejects)
	}
	j1, j2 := sink.jobs[0], sink.jobs[1]
	if j1.TargetMsgkey[0] != (job.Target{Target: "u1", MsgKey: "k1"}) || string(j1.TemplateKeyValue) != `{"姓名":"张三","备注":"with, comma"}` {
		t.Fatalf("row 1: %v %s", j1.TargetMsgkey, j1.TemplateKeyValue)
	}
	var kv map[string]string
	_ = json.Unmarshal(j2.TemplateKeyValue, &kv)
	if kv["姓名"] != `李"四` || kv["备注"] != "line\nbreak" /* encoding/csv turns a quoted CRLF into \n */ || j2.TargetMsgkey[0].MsgKey != DeriveMsgKey("spring", "u2") {
		t.Fatalf("row 2: %v %v", kv, j2.TargetMsgkey)
	}
}

func TestBadRowsAreRejectedWithTheirLine(t *testing.T) {
	csv := "target,name\n" +
		"u1,a\n" +
		",a\n" + // line 3: empty target
		"u2,a,extra\n" + // line 4: too many fields
		"u1,a\n" + // line 5: u1 again in the same group
		"u3,\"unterminated\n" // line 6: bad quoting
	_, sum, rejects := load(t, csv, 1000, 1000)
	if sum.Rejected != 4 || sum.Targets != 1 {
		t.Fatalf("summary %+v\n%s", sum, rejects)
	}
	for _, want := range []string{`3,"target is empty"`, `4,"wrong number of fields"`, `5,"target \"u1\" is already`, `6,`} {
		if !strings.Contains(rejects, want) {
			t.Fatalf("rejects lack %q:\n%s", want, rejects)
		}
	}
	_, err := LoadCSV(context.Background(), strings.NewReader(csv), Options{
		Campaign: Campaign{ID: "spring", Base: base(), GroupSize: 10, Window: 10}, Strict: true})
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("--strict must stop at line 3: %v", err)
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, h := range []string{"name,money\n", "target,name,name\n", "target,,x\n", ""} {
		if _, err := NewCSV(strings.NewReader(h)); err == nil {
			t.Errorf("header %q must be refused", h)
		}
	}
}

func TestJSONLines(t *testing.T) {
	lines := `{"taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"targetMsgkey":{"u":"k"},"expiredSeconds":60,"templateName":"n"}` + "\n\n" +
		`{"jobId":"personal","taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"targetMsgs":[{"target":"p","msgKey":"k","templateKeyValue":{"name":"张三"}}],"expiredSeconds":60,"templateName":"n"}` + "\n" +
		`{"jobId":"own-id","taskName":"t","appId":"a","workspaceId":"w","deliveryType":3,"targetMsgkey":{"v":"k"},"expiredSeconds":60,"templateName":"n"}` + "\n" +
		`{"APPID":1}` + "\n"
	sink := &collect{}
	var rejects bytes.Buffer
	sum, err := LoadJSONL(context.Background(), strings.NewReader(lines), Options{Campaign: Campaign{ID: "camp"}, Sink: sink, Rejects: &rejects})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Jobs != 3 || sum.Rejected != 1 || !strings.HasPrefix(sink.jobs[0].JobID, "camp.line1.") || sink.jobs[2].JobID != "own-id" {
		t.Fatalf("summary %+v jobs %v", sum, sink.jobs)
	}
	if m := sink.jobs[1].TargetMsgs; len(m) != 1 || m[0].TemplateKeyValue.String() != `{"name":"张三"}` {
		t.Fatalf("a targetMsgs line: %+v", m)
	}
	if !strings.Contains(rejects.String(), `5,"APPID: unknown field`) {
		t.Fatalf("rejects: %s", rejects.String())
	}
}

func TestCampaignTemplateValuesMergeWithTheFile(t *testing.T) {
	b := base()
	b.TemplateKeyValue = job.Object(`{"shop":"东区","name":"nobody"}`)
	sink := &collect{}
	_, err := LoadCSV(context.Background(), strings.NewReader("target,name\nu1,张三\n"), Options{
		Campaign: Campaign{ID: "m", Base: b, GroupSize: 10, Window: 10}, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	// The file's value wins; the campaign adds what the file lacks.
	if got := string(sink.jobs[0].TemplateKeyValue); got != `{"name":"张三","shop":"东区"}` {
		t.Fatalf("templateKeyValue %s", got)
	}
}

func loadMultiple(t *testing.T, b *job.Job, csv string, groupSize int) (*collect, Summary, string) {
	t.Helper()
	sink := &collect{}
	var rejects bytes.Buffer
	sum, err := LoadCSV(context.Background(), strings.NewReader(csv), Options{
		Campaign: Campaign{ID: "spring", Base: b, API: job.APIMultiple, GroupSize: groupSize}, Sink: sink, Rejects: &rejects})
	if err != nil {
		t.Fatal(err)
	}
	return sink, sum, rejects.String()
}

// With PushMultiple rows become jobs in file order, each target with its own
// row's values merged with the campaign's.
func TestMultipleKeepsFileOrderAndEachRowsValues(t *testing.T) {
	b := base()
	b.TemplateKeyValue = job.Object(`{"shop":"东区","name":"nobody"}`)
	csv := "target,msgKey,name\nu1,k1,张三\nu2,,李四\nu3,k3,张三\nu4,k4,王五\nu5,k5,\"赵, 六\"\n"
	sink, sum, rejects := loadMultiple(t, b, csv, 2)
	if sum.Rows != 5 || sum.Jobs != 3 || sum.Targets != 5 || sum.Rejected != 0 {
		t.Fatalf("summary %+v\n%s", sum, rejects)
	}
	var got []string
	for _, j := range sink.jobs {
		if j.TemplateKeyValue != nil || len(j.TargetMsgkey) != 0 || j.API() != job.APIMultiple {
			t.Fatalf("job %s is not a targetMsgs job: %+v", j.JobID, j)
		}
		dot := strings.LastIndex(j.JobID, ".") // then 12 hex digits of the job's content
		if len(j.JobID)-dot != 13 || !job.ValidJobID(j.JobID) {
			t.Fatalf("job id %q", j.JobID)
		}
		for _, m := range j.TargetMsgs {
			got = append(got, j.JobID[:dot]+":"+m.Target+"="+m.TemplateKeyValue.String())
		}
	}
	want := []string{
		`spring.m2:u1={"name":"张三","shop":"东区"}`, `spring.m2:u2={"name":"李四","shop":"东区"}`,
		`spring.m4:u3={"name":"张三","shop":"东区"}`, `spring.m4:u4={"name":"王五","shop":"东区"}`,
		`spring.m6:u5={"name":"赵, 六","shop":"东区"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("targets:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sink.jobs[0].TargetMsgs[1].MsgKey != DeriveMsgKey("spring", "u2") {
		t.Fatal("a row without msgKey gets the derived one")
	}
	again, _, _ := loadMultiple(t, b, csv, 2)
	if again.jobs[1].JobID != sink.jobs[1].JobID {
		t.Fatal("the same file must give the same job ids")
	}
}

// A target that appears twice anywhere in the file is a rejected row naming the
// line of its first appearance, whichever the API and the groups.
func TestRepeatedTargetNamesItsFirstLine(t *testing.T) {
	csv := "target,name\nu1,a\nu2,b\nu3,c\nu1,b\nu2,b\n"
	for _, api := range []string{job.APIMultiple, job.APITemplate} {
		sink := &collect{}
		var rejects bytes.Buffer
		sum, err := LoadCSV(context.Background(), strings.NewReader(csv), Options{
			Campaign: Campaign{ID: "spring", Base: base(), API: api, GroupSize: 2, Window: 100}, Sink: sink, Rejects: &rejects})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Rejected != 2 || sum.Targets != 3 {
			t.Fatalf("%s: summary %+v\n%s", api, sum, rejects.String())
		}
		for _, want := range []string{`5,"target \"u1\" is already on line 2"`, `6,"target \"u2\" is already on line 3"`} {
			if !strings.Contains(rejects.String(), want) {
				t.Fatalf("%s: rejects lack %s:\n%s", api, want, rejects.String())
			}
		}
	}
}

// sizes is a Sink that keeps each job's id and body size.
type sizes struct {
	ids   []string
	bytes []int
}

func (s *sizes) Publish(_ context.Context, id string, _ int, body []byte) error {
	s.ids, s.bytes = append(s.ids, id), append(s.bytes, len(body))
	return nil
}

// Jobs are cut by bytes as well as rows, for both kinds, and a row that no job
// can carry is rejected with its line.
func TestJobsAreCutByBytes(t *testing.T) {
	const limit = 64 << 10
	var b strings.Builder
	b.WriteString("target,name\n")
	for i := range 500 {
		// Wide values for PushMultiple; long targets with escapes and 中文 for PushTemplate.
		fmt.Fprintf(&b, "\"user\"\"%d-%s\",%s\n", i, strings.Repeat("中\t", 40), strings.Repeat("v", 1200))
	}
	fmt.Fprintf(&b, "huge,%s\n", strings.Repeat("v", limit)) // line 502
	for _, api := range []string{job.APIMultiple, job.APITemplate} {
		sink := &sizes{}
		var rejects bytes.Buffer
		sum, err := LoadCSV(context.Background(), strings.NewReader(b.String()), Options{
			Campaign: Campaign{ID: "wide", Base: base(), API: api, GroupSize: 1000, Window: 1000, MaxBytes: limit},
			Sink:     sink, Rejects: &rejects})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Targets != 500 || sum.Rejected != 1 || !strings.Contains(rejects.String(), "502,\"the row makes a job of") {
			t.Fatalf("%s: summary %+v\n%s", api, sum, rejects.String())
		}
		fullest := 0
		for i, n := range sink.bytes {
			if n > limit {
				t.Fatalf("%s: job %s is %d bytes, over %d", api, sink.ids[i], n, limit)
			}
			fullest = max(fullest, n)
		}
		if len(sink.bytes) < 2 || fullest < limit*9/10 {
			t.Fatalf("%s: %d jobs, the fullest %d bytes: jobs must be cut near the limit", api, len(sink.bytes), fullest)
		}
	}
}

// Two files of one campaign make different ids where their rows stand on the same
// lines; the same file makes the same ids.
func TestIDsTellFilesApart(t *testing.T) {
	ids := func(csv, api string) []string {
		sink := &sizes{}
		if _, err := LoadCSV(context.Background(), strings.NewReader(csv), Options{
			Campaign: Campaign{ID: "c", Base: base(), API: api, GroupSize: 2, Window: 10}, Sink: sink}); err != nil {
			t.Fatal(err)
		}
		return sink.ids
	}
	part1, part2 := "target,name\nu1,a\nu2,a\n", "target,name\nu3,a\nu4,a\n"
	for _, api := range []string{job.APIMultiple, job.APITemplate} {
		a, b, again := ids(part1, api), ids(part2, api), ids(part1, api)
		if len(a) != 1 || a[0] == b[0] || a[0] != again[0] || !job.ValidJobID(a[0]) {
			t.Fatalf("%s: part1 %v, part2 %v, part1 again %v", api, a, b, again)
		}
	}
}
