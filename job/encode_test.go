package job

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// reflectEncode is what encoding/json writes for a job with HTML escaping off:
// the reference the hand-written Encode must match byte for byte.
func reflectEncode(t *testing.T, j *Job) []byte {
	t.Helper()
	type plain Job // no methods: encoding/json walks the fields
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode((*plain)(j)); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// Every job of the committed fuzz corpus, and some awkward strings, encode to the
// same bytes as encoding/json's.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	var bodies [][]byte
	files, _ := filepath.Glob("testdata/fuzz/FuzzDecodeValidate/*")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.SplitN(string(raw), "\n", 2)
		if len(lines) < 2 {
			continue
		}
		s := strings.TrimSpace(lines[1])
		s = strings.TrimSuffix(strings.TrimPrefix(s, "[]byte("), ")")
		if body, err := strconv.Unquote(s); err == nil {
			bodies = append(bodies, []byte(body))
		}
	}
	weird := "a\"b\\c\n\r\t\b\f\x01\x1f<>&\u2028\u2029张三\xff"
	j := validJob()
	j.JobID, j.TaskName = "w", weird
	j.TargetMsgkey = Targets{{Target: weird, MsgKey: weird}}
	j.StrategyType, j.SmsStrategy, j.DismissalDate = Int64(0), Int64(-1), Int64(1<<62)
	j.ExtendedParams = Object(`{"k":"<&>"}`)
	checked := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for range 300 {
		checkSame(t, randomJob(rng))
		checked++
	}
	for _, body := range bodies {
		if d, err := Decode(body); err == nil {
			checkSame(t, d)
			checked++
		}
	}
	checkSame(t, j)
	if checked < 300 {
		t.Fatalf("only %d corpus jobs decoded: the comparison covers too little", checked)
	}
}

// randomJob fills every field with awkward strings, and optional ones at random.
func randomJob(rng *rand.Rand) *Job {
	pieces := []string{"a", "张三", "\"", "\\", "\n", "\x00", "\x1f", "<", ">", "&", "\u2028", "\u2029", "\xff", "é", "🙂", " ", "\t"}
	str := func() string {
		var sb strings.Builder
		for range rng.IntN(6) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return sb.String()
	}
	maybe := func() string {
		if rng.IntN(2) == 0 {
			return ""
		}
		return str()
	}
	j := &Job{JobID: maybe(), ReplyTo: maybe(), TaskName: str(), AppID: str(), WorkspaceID: str(),
		DeliveryType: rng.Int64N(10) - 2, ExpiredSeconds: rng.Int64(), TemplateName: str(),
		Classification: maybe(), NotifyType: maybe(), TransparentMessageUrgency: maybe(), SmsSignName: maybe(),
		SmsTemplateCode: maybe(), MiChannelID: maybe(), ActivityEvent: maybe(), ChannelID: maybe(), TenantID: maybe()}
	for range rng.IntN(4) {
		j.TargetMsgkey = append(j.TargetMsgkey, Target{Target: str(), MsgKey: str()})
	}
	for range rng.IntN(3) {
		m := TargetMsg{Target: str(), MsgKey: str()}
		if rng.IntN(2) == 0 {
			m.TemplateKeyValue = ObjectOf([]string{str()}, []string{str()})
		}
		if rng.IntN(2) == 0 {
			m.ExtendedParams = ObjectOf([]string{str(), str()}, []string{str(), str()})
		}
		j.TargetMsgs = append(j.TargetMsgs, m)
	}
	if rng.IntN(2) == 0 {
		j.StrategyType = Int64(rng.Int64N(3))
	}
	if rng.IntN(2) == 0 {
		j.DismissalDate = Int64(-rng.Int64())
	}
	if rng.IntN(2) == 0 {
		j.TemplateKeyValue = ObjectOf([]string{str()}, []string{str()})
	}
	if rng.IntN(2) == 0 {
		j.Title, j.Content, j.URI = str(), maybe(), maybe()
		j.PushStyle, j.PushAction, j.Silent = Int64(rng.Int64N(3)), Int64(rng.Int64N(2)), Int64(rng.Int64N(2))
		j.ImageUrls = ObjectOf([]string{str()}, []string{str()})
	}
	if rng.IntN(3) == 0 {
		j.Broadcast = &Broadcast{MsgKey: str()}
		if rng.IntN(2) == 0 {
			j.Broadcast.PushStatus, j.Broadcast.UnBindPeriod = Int64(rng.Int64N(3)), Int64(-rng.Int64())
		}
		if rng.IntN(2) == 0 {
			j.Broadcast.BindPeriod, j.Broadcast.AndroidChannel = Int64(rng.Int64()), Int64(0)
		}
	}
	if rng.IntN(3) == 0 {
		at := time.Unix(rng.Int64N(1<<32), rng.Int64N(1e9)).In(time.FixedZone("x", 3600*int(rng.Int64N(24)-12)))
		j.NotAfter = &at
	}
	return j
}

func checkSame(t *testing.T, j *Job) {
	t.Helper()
	got, err := j.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := reflectEncode(t, j); !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

func TestObjectOf(t *testing.T) {
	o := ObjectOf([]string{"name", "金额"}, []string{"张\"三", "<200>"})
	if string(o) != `{"name":"张\"三","金额":"<200>"}` {
		t.Fatalf("ObjectOf: %s", o)
	}
}

func BenchmarkEncode(b *testing.B) {
	j := validJob()
	j.TemplateKeyValue = Object(`{"money":"200","name":"张三"}`)
	b.ReportAllocs()
	for range b.N {
		_, _ = j.Encode()
	}
}

// BenchmarkDecodeTargetMsgs decodes a job of 1,000 personal targets, the unit a
// worker reads for a personal campaign.
func BenchmarkDecodeTargetMsgs(b *testing.B) {
	j := validJob()
	j.TargetMsgkey, j.TargetMsgs = nil, msgs(1000)
	body, _ := j.Encode()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeEvent decodes a one-target event job, what a worker reads per
// password-reset push.
func BenchmarkDecodeEvent(b *testing.B) {
	body := []byte(exampleJob)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
