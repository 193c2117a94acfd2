package push

import "testing"

// Every row of docs/mpaas.md's classification table, in its order.
func TestClassifyTable(t *testing.T) {
	ok := []struct {
		code      string
		success   bool
		class     Class
		throttled bool
	}{
		{"OK", true, Success, false},
		{"OK", false, JobFault, false}, // Success false
		{"8011", false, Transient, true},
		{"FLOW_CONTROL_ERROR", false, Transient, true},
		{"9000", false, Transient, false},
		{"3022", false, JobFault, false},
		{"3028", false, JobFault, false},
		{"", false, JobFault, false},
	}
	for _, c := range ok {
		class, throttled := classifyOK(c.code, c.success)
		if class != c.class || throttled != c.throttled {
			t.Errorf("200 %s success=%v: %s throttled=%v, want %s %v", c.code, c.success, class, throttled, c.class, c.throttled)
		}
	}
	gateway := []struct {
		status    int
		code      string
		class     Class
		throttled bool
	}{
		{400, "Throttling", Transient, true},
		{400, "Throttling.User", Transient, true},
		{503, "Throttling.Api", Transient, true},
		{503, "ServiceUnavailable", Transient, false},
		{500, "InternalError", Transient, false},
		{400, "SignatureNonceUsed", Transient, false},
		{502, "", Transient, false},
		{504, "GatewayTimeout", Transient, false},
		{400, "SignatureDoesNotMatch", ConfigFault, false},
		{400, "IncompleteSignature", ConfigFault, false},
		{404, "InvalidAccessKeyId.NotFound", ConfigFault, false},
		{400, "InvalidAccessKeyId.Inactive", ConfigFault, false},
		{403, "Forbidden.RAM", ConfigFault, false},
		{403, "Forbidden", ConfigFault, false},
		{400, "InvalidTimeStamp.Expired", ConfigFault, false},
		{404, "InvalidApi.NotFound", ConfigFault, false},
		{400, "InvalidParameter", JobFault, false},
		{400, "MissingAppId", JobFault, false},
		{400, "InvalidTemplateName.Malformed", JobFault, false},
		{404, "SomethingElse", JobFault, false},
		{302, "", Transient, false},
	}
	for _, c := range gateway {
		class, throttled := classifyGateway(c.status, c.code)
		if class != c.class || throttled != c.throttled {
			t.Errorf("%d %s: %s throttled=%v, want %s %v", c.status, c.code, class, throttled, c.class, c.throttled)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	cases := []struct {
		in, scheme, host string
		bad              bool
	}{
		{"", "HTTPS", DefaultEndpoint, false},
		{"mpaas.cn-shanghai.aliyuncs.com", "HTTPS", "mpaas.cn-shanghai.aliyuncs.com", false},
		{"http://127.0.0.1:18080", "HTTP", "127.0.0.1:18080", false},
		{"https://mpaas.example:8443/", "HTTPS", "mpaas.example:8443", false},
		{"ftp://x", "", "", true},
		{"http://x/path", "", "", true},
		{"host/path", "", "", true},
	}
	for _, c := range cases {
		ep, err := ParseEndpoint(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: want an error", c.in)
			}
			continue
		}
		if err != nil || ep.Scheme != c.scheme || ep.Host != c.host {
			t.Errorf("%q: got %+v %v", c.in, ep, err)
		}
	}
}
