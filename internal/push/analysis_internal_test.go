package push

import (
	"strings"
	"testing"

	"github.com/mpaas-push/pushworker/job"
)

// The traps of the v1 SDK's analytics types become a right figure or an
// error, never a silent zero.
func TestDecodeAnalysis(t *testing.T) {
	full := job.Figures{Pushed: 10, Succeeded: 9, Arrived: 8, Opened: 3, Ignored: 5}
	for _, c := range []struct {
		name, body string
		want       Analysis
		err        string
	}{
		{"the SDK's names", `{"ResultContent":{"Data":{"PushTotalNum":10,"PushSuccessNum":9,"PushArrivalNum":8,"OpenNum":3,"IgnoreNum":5,"TaskId":12}}}`,
			Analysis{true, full}, ""},
		{"lower case, the other naming", `{"resultContent":{"data":{"pushNum":10,"pushSuccessNum":9,"arrivalNum":8,"openNum":3,"ignoreNum":5}}}`,
			Analysis{true, full}, ""},
		{"ResultContent as a string, a hex task id", `{"ResultContent":"{\"Data\":{\"PushTotalNum\":10,\"PushSuccessNum\":9,\"PushArrivalNum\":8,\"OpenNum\":3,\"IgnoreNum\":5,\"TaskId\":\"9f3a0c\"}}"}`,
			Analysis{true, full}, ""},
		{"figures as strings and floats", `{"ResultContent":{"Data":{"PushTotalNum":"10","PushSuccessNum":9.0,"PushArrivalNum":"8","OpenNum":3,"IgnoreNum":5}}}`,
			Analysis{true, full}, ""},
		{"no ResultContent", `{"ResultCode":"OK"}`, Analysis{}, ""},
		{"no Data", `{"ResultContent":{"Success":"true"}}`, Analysis{}, ""},
		{"Data null", `{"ResultContent":{"Data":null}}`, Analysis{}, ""},
		{"all zero", `{"ResultContent":{"Data":{"PushTotalNum":0,"OpenNum":0}}}`, Analysis{}, ""},
		{"no figure's key", `{"ResultContent":{"Data":{"Total":10,"Opens":3}}}`, Analysis{}, "none of PushTotalNum"},
		{"a figure not a count", `{"ResultContent":{"Data":{"PushTotalNum":"many"}}}`, Analysis{}, "PushTotalNum: many is not a count"},
		{"a negative figure", `{"ResultContent":{"Data":{"PushTotalNum":-1}}}`, Analysis{}, "not a count"},
		{"a fraction", `{"ResultContent":{"Data":{"PushTotalNum":1.5}}}`, Analysis{}, "not a count"},
		{"ResultContent not an object", `{"ResultContent":"done"}`, Analysis{}, "ResultContent is not an object"},
		{"Data a list", `{"ResultContent":{"Data":[1,2]}}`, Analysis{}, "ResultContent.Data is not an object"},
		{"not JSON", `<html>`, Analysis{}, "not a JSON object"},
	} {
		got, err := decodeAnalysis([]byte(c.body))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.err)
		case got != c.want:
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}
