package mpaassim

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"sort"
	"strings"
)

// This file is the Alibaba Cloud RPC signature, version 1.0, written from its
// public description rather than from the SDK, so that it catches a client that
// signs wrongly instead of agreeing with it:
//
//	StringToSign = Method + "&" + pe("/") + "&" + pe(canonical)
//	canonical    = pe(k1) "=" pe(v1) "&" pe(k2) "=" pe(v2) ...  (keys sorted by byte order)
//	Signature    = base64(HMAC-SHA1(key = AccessKeySecret + "&", StringToSign))
//
// where pe is RFC 3986 percent-encoding of the UTF-8 bytes: A–Z a–z 0–9 - _ . ~ stay,
// every other byte becomes %XX in upper case (a space is %20, never +).

// percentEncode is RFC 3986 percent-encoding.
func percentEncode(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// stringToSign builds the string that is signed, from every parameter of the
// request (query and form) except Signature.
func stringToSign(method string, params map[string]string) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var canonical strings.Builder
	for i, k := range keys {
		if i > 0 {
			canonical.WriteByte('&')
		}
		canonical.WriteString(percentEncode(k))
		canonical.WriteByte('=')
		canonical.WriteString(percentEncode(params[k]))
	}
	return method + "&" + percentEncode("/") + "&" + percentEncode(canonical.String())
}

// sign computes the signature of a request.
func sign(method string, params map[string]string, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(stringToSign(method, params)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// signatureMatches compares in constant time.
func signatureMatches(got, want string) bool {
	return hmac.Equal([]byte(got), []byte(want))
}
