package job

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// fieldNames lists every field a job may carry, with its exact spelling.
// "StrategyContent" is the seed document's own spelling, accepted as an alias.
var fieldNames = []string{
	"jobId", "replyTo", "notAfter",
	"taskName", "appId", "workspaceId", "deliveryType", "targetMsgkey", "targetMsgs", "expiredSeconds", "templateName",
	"templateKeyValue", "extendedParams", "strategyContent", "StrategyContent", "smsTemplateParam",
	"transparentMessagePayload", "thirdChannelCategory", "notifyLevel", "activityContentState",
	"classification", "notifyType", "transparentMessageUrgency", "smsSignName", "smsTemplateCode",
	"miChannelId", "activityEvent", "channelId", "tenantId", "strategyType", "smsStrategy", "dismissalDate",
	"pushAction", "silent", "title", "content", "pushStyle", "imageUrls", "iconUrls", "uri", "broadcast",
}

// broadcastFields are the fields of the broadcast object.
var broadcastFields = []string{"msgKey", "pushStatus", "bindPeriod", "unBindPeriod", "androidChannel"}

// targetMsgFields are the fields of one element of targetMsgs.
var targetMsgFields = []string{"target", "msgKey", "templateKeyValue", "extendedParams"}

// Decode reads one job from its JSON message body, strictly: field names are exact
// (case-sensitive), an unknown or repeated field is an error that names it, null means
// absent, integers must be JSON integers, and map-typed parameters may be objects or
// strings holding one.
//
// On an error about one field, Decode still returns the job with every field it could
// read (so a rejected result can count the targets); on a message that is not a JSON
// object it returns nil. Every error matches ErrInvalid.
func Decode(data []byte) (*Job, error) {
	if !utf8.Valid(data) {
		return nil, invalid("", "job is not valid UTF-8")
	}
	members, err := parseMembers(data)
	if err != nil {
		return nil, invalid("", "job is not a JSON object: "+err.Error())
	}
	j := &Job{}
	var first error
	seen := make(map[string]bool, len(members))
	for _, m := range members {
		if err := j.set(m.key, m.value, seen); err != nil && first == nil {
			first = err
		}
	}
	return j, first
}

// UnmarshalJSON decodes strictly, as Decode does.
func (j *Job) UnmarshalJSON(data []byte) error {
	v, err := Decode(data)
	if err != nil {
		return err
	}
	*j = *v
	return nil
}

func (j *Job) set(key string, raw json.RawMessage, seen map[string]bool) error {
	name := key
	if key == "StrategyContent" {
		name = "strategyContent"
	}
	if seen[name] {
		if name != key || seen["StrategyContent"] {
			return invalid("strategyContent", `give "strategyContent" or "StrategyContent", not both`)
		}
		return invalid(key, "field given more than once")
	}
	seen[name] = true
	if key == "StrategyContent" {
		seen[key] = true
	}
	if isNull(raw) {
		return nil
	}
	var err error
	switch key {
	case "jobId":
		j.JobID, err = parseString(key, raw)
	case "replyTo":
		j.ReplyTo, err = parseString(key, raw)
	case "notAfter":
		var s string
		if s, err = parseString(key, raw); err == nil {
			t, perr := time.Parse(time.RFC3339, s)
			if perr != nil {
				return invalid(key, "must be an RFC 3339 time such as 2026-11-27T10:00:00Z")
			}
			j.NotAfter = &t
		}
	case "taskName":
		j.TaskName, err = parseString(key, raw)
	case "appId":
		j.AppID, err = parseString(key, raw)
	case "workspaceId":
		j.WorkspaceID, err = parseString(key, raw)
	case "templateName":
		j.TemplateName, err = parseString(key, raw)
	case "classification":
		j.Classification, err = parseString(key, raw)
	case "notifyType":
		j.NotifyType, err = parseString(key, raw)
	case "transparentMessageUrgency":
		j.TransparentMessageUrgency, err = parseString(key, raw)
	case "smsSignName":
		j.SmsSignName, err = parseString(key, raw)
	case "smsTemplateCode":
		j.SmsTemplateCode, err = parseString(key, raw)
	case "miChannelId":
		j.MiChannelID, err = parseString(key, raw)
	case "activityEvent":
		j.ActivityEvent, err = parseString(key, raw)
	case "channelId":
		j.ChannelID, err = parseString(key, raw)
	case "tenantId":
		j.TenantID, err = parseString(key, raw)
	case "deliveryType":
		j.DeliveryType, err = parseInt(key, raw)
	case "expiredSeconds":
		j.ExpiredSeconds, err = parseInt(key, raw)
	case "strategyType":
		j.StrategyType, err = parseIntPtr(key, raw)
	case "smsStrategy":
		j.SmsStrategy, err = parseIntPtr(key, raw)
	case "dismissalDate":
		j.DismissalDate, err = parseIntPtr(key, raw)
	case "targetMsgkey":
		j.TargetMsgkey, err = parseTargets(key, raw)
	case "targetMsgs":
		j.TargetMsgs, err = parseTargetMsgs(key, raw)
	case "templateKeyValue":
		j.TemplateKeyValue, err = parseObject(key, raw)
	case "extendedParams":
		j.ExtendedParams, err = parseObject(key, raw)
	case "strategyContent", "StrategyContent":
		j.StrategyContent, err = parseObject(key, raw)
	case "smsTemplateParam":
		j.SmsTemplateParam, err = parseObject(key, raw)
	case "transparentMessagePayload":
		j.TransparentMessagePayload, err = parseObject(key, raw)
	case "thirdChannelCategory":
		j.ThirdChannelCategory, err = parseObject(key, raw)
	case "notifyLevel":
		j.NotifyLevel, err = parseObject(key, raw)
	case "activityContentState":
		j.ActivityContentState, err = parseObject(key, raw)
	case "pushAction":
		j.PushAction, err = parseIntPtr(key, raw)
	case "silent":
		j.Silent, err = parseIntPtr(key, raw)
	case "title":
		j.Title, err = parseString(key, raw)
	case "content":
		j.Content, err = parseString(key, raw)
	case "pushStyle":
		j.PushStyle, err = parseIntPtr(key, raw)
	case "imageUrls":
		j.ImageUrls, err = parseObject(key, raw)
	case "iconUrls":
		j.IconUrls, err = parseObject(key, raw)
	case "uri":
		j.URI, err = parseString(key, raw)
	case "broadcast":
		j.Broadcast, err = parseBroadcast(key, raw)
	default:
		return unknownField(key)
	}
	return err
}

func unknownField(key string) error { return unknownFieldOf(key, key, fieldNames) }

// unknownFieldOf is the error for field key (shown as path) that is not one of names.
func unknownFieldOf(path, key string, names []string) error {
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return invalid(path, fmt.Sprintf("unknown field (field names are case-sensitive: did you mean %q?)", name))
		}
	}
	return invalid(path, "unknown field")
}

type member struct {
	key   string
	value json.RawMessage
}

// parseMembers reads a JSON object's members in the order written, keeping
// repeated keys (callers decide what a repeat means). Anything after the object is
// an error.
func parseMembers(data []byte) ([]member, error) {
	if json.Valid(data) {
		if members, ok := splitMembers(data); ok {
			return members, nil
		}
	}
	return decodeMembers(data) // not an object, or not JSON: its error says why
}

// splitMembers is parseMembers for a valid JSON text, without the token
// reader's allocations (BenchmarkDecodeEvent: 11.1 → 5.2 µs, 163 → 51 allocations): it walks the
// object's members and keeps each value's bytes as written. It reports false
// when the text is not an object.
func splitMembers(data []byte) ([]member, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, false
	}
	members := make([]member, 0, 16)
	if i = skipSpace(data, i+1); data[i] == '}' {
		return members, true
	}
	for {
		end := stringEnd(data, i)
		key := string(data[i+1 : end-1])
		if strings.IndexByte(key, '\\') >= 0 || !utf8.ValidString(key) { // as the token reader reads it
			if json.Unmarshal(data[i:end], &key) != nil {
				return nil, false
			}
		}
		i = skipSpace(data, skipSpace(data, end)+1) // past the colon
		end = valueEnd(data, i)
		members = append(members, member{key: key, value: data[i:end:end]})
		if i = skipSpace(data, end); data[i] == '}' {
			return members, true
		}
		i = skipSpace(data, i+1) // past the comma
	}
}

// stringEnd is the index after the string that starts at data[i].
func stringEnd(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd is the index after the value that starts at data[i].
func valueEnd(data []byte, i int) int {
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch data[i] {
			case '"':
				i = stringEnd(data, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(data) && !strings.ContainsRune(",}] \t\n\r", rune(data[i])) {
		i++
	}
	return i
}

// decodeMembers is parseMembers with the token reader, whose errors say what
// is wrong with a text that is not a JSON object.
func decodeMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, syntaxError(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("expected an object")
	}
	var members []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxError(err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("expected a field name")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError(err)
		}
		members = append(members, member{key: key, value: raw})
	}
	if _, err := dec.Token(); err != nil {
		return nil, syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the object")
	}
	return members, nil
}

func syntaxError(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of input")
	}
	return err
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func parseString(field string, raw json.RawMessage) (string, error) {
	var s string
	if kindOf(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
		return "", invalid(field, "must be a string, not "+kindOf(raw))
	}
	return s, nil
}

func parseInt(field string, raw json.RawMessage) (int64, error) {
	if kindOf(raw) != "a number" {
		return 0, invalid(field, "must be an integer, not "+kindOf(raw))
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, invalid(field, "integer out of range")
		}
		return 0, invalid(field, "must be an integer (no fraction or exponent)")
	}
	return n, nil
}

func parseIntPtr(field string, raw json.RawMessage) (*int64, error) {
	n, err := parseInt(field, raw)
	if err != nil {
		return nil, err
	}
	return &n, nil
}

// unwrapString turns a string holding JSON into that JSON; other values pass as they are.
func unwrapString(field string, raw json.RawMessage) (json.RawMessage, error) {
	if kindOf(raw) != "a string" {
		return raw, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, invalid(field, "must be an object or a string holding one")
	}
	if !json.Valid([]byte(s)) {
		return nil, invalid(field, "string does not hold valid JSON")
	}
	return json.RawMessage(s), nil
}

// parseObject accepts a JSON object, or a string holding one, and keeps it compact,
// with its keys in the order written.
func parseObject(field string, raw json.RawMessage) (Object, error) {
	inner, err := unwrapString(field, raw)
	if err != nil {
		return nil, err
	}
	if kindOf(inner) != "an object" {
		return nil, invalid(field, "must be an object or a string holding one, not "+kindOf(inner))
	}
	var b bytes.Buffer
	if err := json.Compact(&b, inner); err != nil {
		return nil, invalid(field, "not valid JSON: "+err.Error())
	}
	return Object(b.Bytes()), nil
}

// parseTargets reads the target→msgKey map in order. Keys must not repeat and
// values must be strings.
func parseTargets(field string, raw json.RawMessage) (Targets, error) {
	inner, err := unwrapString(field, raw)
	if err != nil {
		return nil, err
	}
	if kindOf(inner) != "an object" {
		return nil, invalid(field, "must be an object of target → msgKey, or a string holding one, not "+kindOf(inner))
	}
	if t, ok := fastTargets(inner); ok {
		return t, nil
	}
	members, err := parseMembers(inner)
	if err != nil {
		return nil, invalid(field, "not valid JSON: "+err.Error())
	}
	if len(members) == 0 {
		return nil, nil // an empty map is no targets, the same as an absent one
	}
	targets := make(Targets, 0, len(members))
	seen := make(map[string]struct{}, len(members))
	for _, m := range members {
		if _, dup := seen[m.key]; dup {
			return targets, invalid(field, "target "+quote(m.key)+" given more than once")
		}
		seen[m.key] = struct{}{}
		var v string
		if kindOf(m.value) != "a string" || json.Unmarshal(m.value, &v) != nil {
			return targets, invalid(field, "msgKey of target "+quote(m.key)+" must be a string, not "+kindOf(m.value))
		}
		targets = append(targets, Target{Target: m.key, MsgKey: v})
	}
	return targets, nil
}

// fastTargets reads the common case, an object of plain strings (no escapes, no
// repeated target), without the general decoder, which was most of a worker's
// decoding time. Anything else reports !ok and goes the general way, which also
// gives the errors.
func fastTargets(b []byte) (Targets, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, skipSpace(b, i+1) == len(b)
	}
	var out Targets
	var seen map[string]struct{}
	for {
		k, next, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		v, next, ok := plainString(b, skipSpace(b, i+1))
		if !ok {
			return nil, false
		}
		if seen == nil {
			seen = make(map[string]struct{}, 16)
		}
		if _, dup := seen[k]; dup {
			return nil, false
		}
		seen[k] = struct{}{}
		out = append(out, Target{Target: k, MsgKey: v})
		var more bool
		if i, more, ok = afterValue(b, next, '}'); !ok {
			return nil, false
		} else if !more {
			return out, skipSpace(b, i) == len(b)
		}
	}
}

// afterValue moves past the member or element that ended at b[i]: to the
// next one after a comma (more), or past the closing bracket; ok is false on
// anything else.
func afterValue(b []byte, i int, closing byte) (next int, more, ok bool) {
	i = skipSpace(b, i)
	switch {
	case i >= len(b):
		return 0, false, false
	case b[i] == closing:
		return i + 1, false, true
	case b[i] == ',':
		return skipSpace(b, i+1), true, true
	}
	return 0, false, false
}

// plainString reads a JSON string at b[i] that needs no unescaping.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20:
			return "", 0, false
		}
	}
	return "", 0, false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// fastTargetMsgs reads targetMsgs in the form producers write it (compact
// values, strings without escapes) at a fraction of the general reader's cost:
// no JSON decoder, one allocation per string. Anything else, valid or not, it
// leaves to the general reader (ok false), which it matches exactly where it
// accepts (FuzzTargetMsgs).
func fastTargetMsgs(b []byte) ([]TargetMsg, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return nil, skipSpace(b, i+1) == len(b)
	}
	var out []TargetMsg
	for {
		m, next, ok := fastTargetMsg(b, i)
		if !ok {
			return nil, false
		}
		out = append(out, m)
		var more bool
		if i, more, ok = afterValue(b, next, ']'); !ok {
			return nil, false
		} else if !more {
			return out, skipSpace(b, i) == len(b)
		}
	}
}

// fastTargetMsg reads one element at b[i]: each known field at most once,
// target and msgKey plain strings, the two objects flat and compact.
func fastTargetMsg(b []byte, i int) (TargetMsg, int, bool) {
	var m TargetMsg
	if i >= len(b) || b[i] != '{' {
		return m, 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return m, i + 1, true
	}
	var seen uint8
	for {
		next, ok := plainEnd(b, i)
		if !ok {
			return m, 0, false
		}
		bit := fieldBit(string(b[i+1 : next-1])) // compared, not copied
		i = skipSpace(b, next)
		if i >= len(b) || b[i] != ':' {
			return m, 0, false
		}
		i = skipSpace(b, i+1)
		if bit == 0 || seen&bit != 0 {
			return m, 0, false
		}
		seen |= bit
		if bit <= 2 {
			v, next, ok := plainString(b, i)
			if !ok || !utf8.ValidString(v) {
				return m, 0, false
			}
			if bit == 1 {
				m.Target = v
			} else {
				m.MsgKey = v
			}
			i = next
		} else {
			end, ok := flatObject(b, i)
			if !ok {
				return m, 0, false
			}
			if bit == 4 {
				m.TemplateKeyValue = Object(bytes.Clone(b[i:end]))
			} else {
				m.ExtendedParams = Object(bytes.Clone(b[i:end]))
			}
			i = end
		}
		var more bool
		if i, more, ok = afterValue(b, i, '}'); !ok {
			return m, 0, false
		} else if !more {
			return m, i, true
		}
	}
}

func fieldBit(name string) uint8 {
	switch name {
	case "target":
		return 1
	case "msgKey":
		return 2
	case "templateKeyValue":
		return 4
	case "extendedParams":
		return 8
	}
	return 0
}

// flatObject is the end of the object at b[i] if it is compact and holds only
// plain strings: {"k":"v","k2":"v2"} or {}, exactly what json.Compact would
// give back.
func flatObject(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i++
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		var ok bool
		if i, ok = plainEnd(b, i); !ok || i >= len(b) || b[i] != ':' {
			return 0, false
		}
		if i, ok = plainEnd(b, i+1); !ok || i >= len(b) {
			return 0, false
		}
		switch b[i] {
		case '}':
			return i + 1, true
		case ',':
			i++
		default:
			return 0, false
		}
	}
}

// plainEnd is the index after the string at b[i], if it has no escapes or
// control characters.
func plainEnd(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\' || c < 0x20:
			return 0, false
		}
	}
	return 0, false
}

// parseTargetMsgs reads the targetMsgs array: objects with exactly the fields of
// TargetMsg, errors named by element ("targetMsgs[3].msgKey"). On an error it
// still returns one element per array entry, so a rejected result counts them.
func parseTargetMsgs(field string, raw json.RawMessage) ([]TargetMsg, error) {
	if msgs, ok := fastTargetMsgs(raw); ok {
		return msgs, nil
	}
	return slowTargetMsgs(field, raw)
}

// slowTargetMsgs is the general reader of targetMsgs, with an error for each
// thing wrong.
func slowTargetMsgs(field string, raw json.RawMessage) ([]TargetMsg, error) {
	if kindOf(raw) != "an array" {
		return nil, invalid(field, "must be an array of {target, msgKey, templateKeyValue, extendedParams} objects, not "+kindOf(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, invalid(field, "not valid JSON: "+err.Error())
	}
	if len(elems) == 0 {
		return nil, nil // an empty array is no targets, the same as an absent one
	}
	out := make([]TargetMsg, len(elems))
	var first error
	for i, e := range elems {
		if err := out[i].set(fmt.Sprintf("%s[%d]", field, i), e); err != nil && first == nil {
			first = err
		}
	}
	return out, first
}

func (m *TargetMsg) set(path string, raw json.RawMessage) error {
	if kindOf(raw) != "an object" {
		return invalid(path, "must be an object {target, msgKey, templateKeyValue, extendedParams}, not "+kindOf(raw))
	}
	members, err := parseMembers(raw)
	if err != nil {
		return invalid(path, "not valid JSON: "+err.Error())
	}
	seen := make(map[string]bool, len(members))
	var first error
	for _, mb := range members {
		name := path + "." + mb.key
		var err error
		switch {
		case seen[mb.key]:
			err = invalid(name, "field given more than once")
		case isNull(mb.value):
		case mb.key == "target":
			m.Target, err = parseString(name, mb.value)
		case mb.key == "msgKey":
			m.MsgKey, err = parseString(name, mb.value)
		case mb.key == "templateKeyValue":
			m.TemplateKeyValue, err = parseObject(name, mb.value)
		case mb.key == "extendedParams":
			m.ExtendedParams, err = parseObject(name, mb.value)
		default:
			err = unknownFieldOf(name, mb.key, targetMsgFields)
		}
		seen[mb.key] = true
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// parseBroadcast reads the broadcast object strictly: its known fields only,
// errors named "broadcast.<field>". On an error about one field it still
// returns the object, so that the job reads as a broadcast.
func parseBroadcast(field string, raw json.RawMessage) (*Broadcast, error) {
	if kindOf(raw) != "an object" {
		return nil, invalid(field, "must be an object {msgKey, pushStatus, bindPeriod, unBindPeriod, androidChannel}, not "+kindOf(raw))
	}
	members, err := parseMembers(raw)
	if err != nil {
		return nil, invalid(field, "not valid JSON: "+err.Error())
	}
	b := &Broadcast{}
	seen := make(map[string]bool, len(members))
	var first error
	for _, m := range members {
		name := field + "." + m.key
		var err error
		switch {
		case seen[m.key]:
			err = invalid(name, "field given more than once")
		case isNull(m.value):
		case m.key == "msgKey":
			b.MsgKey, err = parseString(name, m.value)
		case m.key == "pushStatus":
			b.PushStatus, err = parseIntPtr(name, m.value)
		case m.key == "bindPeriod":
			b.BindPeriod, err = parseIntPtr(name, m.value)
		case m.key == "unBindPeriod":
			b.UnBindPeriod, err = parseIntPtr(name, m.value)
		case m.key == "androidChannel":
			b.AndroidChannel, err = parseIntPtr(name, m.value)
		default:
			err = unknownFieldOf(name, m.key, broadcastFields)
		}
		seen[m.key] = true
		if err != nil && first == nil {
			first = err
		}
	}
	return b, first
}
