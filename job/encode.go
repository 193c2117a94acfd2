package job

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Encode is the job's JSON message body, the same bytes that encoding/json gives
// for Job with HTML escaping off (a test holds them equal), written by hand: a
// loader encodes tens of thousands of jobs a second, and reflection was a third of
// its time. '<', '>' and '&' inside object parameters reach mPaaS as written.
func (j *Job) Encode() ([]byte, error) {
	b := make([]byte, 0, 256+len(j.TargetMsgkey)*40+len(j.TargetMsgs)*80+len(j.TemplateKeyValue))
	b = append(b, '{')
	first := true
	str := func(name, v string, omitEmpty bool) {
		if omitEmpty && v == "" {
			return
		}
		b = appendName(b, name, &first)
		b = appendString(b, v)
	}
	num := func(name string, v int64) {
		b = appendName(b, name, &first)
		b = strconv.AppendInt(b, v, 10)
	}
	opt := func(name string, v *int64) {
		if v != nil {
			num(name, *v)
		}
	}
	obj := func(name string, o Object) {
		if len(o) > 0 {
			b = appendName(b, name, &first)
			b = append(b, o...)
		}
	}
	str("jobId", j.JobID, true)
	str("replyTo", j.ReplyTo, true)
	if j.NotAfter != nil {
		b = appendName(b, "notAfter", &first)
		b = append(b, '"')
		b = j.NotAfter.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	str("taskName", j.TaskName, false)
	str("appId", j.AppID, false)
	str("workspaceId", j.WorkspaceID, false)
	num("deliveryType", j.DeliveryType)
	if len(j.TargetMsgkey) > 0 {
		b = appendName(b, "targetMsgkey", &first)
		b = j.TargetMsgkey.appendJSON(b)
	}
	if len(j.TargetMsgs) > 0 {
		b = appendName(b, "targetMsgs", &first)
		b = appendTargetMsgs(b, j.TargetMsgs)
	}
	num("expiredSeconds", j.ExpiredSeconds)
	str("templateName", j.TemplateName, false)
	obj("templateKeyValue", j.TemplateKeyValue)
	obj("extendedParams", j.ExtendedParams)
	obj("strategyContent", j.StrategyContent)
	obj("smsTemplateParam", j.SmsTemplateParam)
	obj("transparentMessagePayload", j.TransparentMessagePayload)
	obj("thirdChannelCategory", j.ThirdChannelCategory)
	obj("notifyLevel", j.NotifyLevel)
	obj("activityContentState", j.ActivityContentState)
	str("classification", j.Classification, true)
	str("notifyType", j.NotifyType, true)
	str("transparentMessageUrgency", j.TransparentMessageUrgency, true)
	str("smsSignName", j.SmsSignName, true)
	str("smsTemplateCode", j.SmsTemplateCode, true)
	str("miChannelId", j.MiChannelID, true)
	str("activityEvent", j.ActivityEvent, true)
	str("channelId", j.ChannelID, true)
	str("tenantId", j.TenantID, true)
	opt("strategyType", j.StrategyType)
	opt("smsStrategy", j.SmsStrategy)
	opt("dismissalDate", j.DismissalDate)
	opt("pushAction", j.PushAction)
	opt("silent", j.Silent)
	str("title", j.Title, true)
	str("content", j.Content, true)
	opt("pushStyle", j.PushStyle)
	obj("imageUrls", j.ImageUrls)
	obj("iconUrls", j.IconUrls)
	str("uri", j.URI, true)
	if bc := j.Broadcast; bc != nil {
		b = appendName(b, "broadcast", &first)
		b = append(b, '{')
		inner := true
		b = appendName(b, "msgKey", &inner)
		b = appendString(b, bc.MsgKey)
		for _, f := range []struct {
			name string
			v    *int64
		}{{"pushStatus", bc.PushStatus}, {"bindPeriod", bc.BindPeriod}, {"unBindPeriod", bc.UnBindPeriod}, {"androidChannel", bc.AndroidChannel}} {
			if f.v != nil {
				b = appendName(b, f.name, &inner)
				b = strconv.AppendInt(b, *f.v, 10)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func appendName(b []byte, name string, first *bool) []byte {
	if !*first {
		b = append(b, ',')
	}
	*first = false
	b = append(b, '"')
	b = append(b, name...)
	return append(b, '"', ':')
}

func (t Targets) appendJSON(b []byte) []byte {
	b = append(b, '{')
	for i, p := range t {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, p.Target)
		b = append(b, ':')
		b = appendString(b, p.MsgKey)
	}
	return append(b, '}')
}

func appendTargetMsgs(b []byte, msgs []TargetMsg) []byte {
	b = append(b, '[')
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"target":`...)
		b = appendString(b, m.Target)
		b = append(b, `,"msgKey":`...)
		b = appendString(b, m.MsgKey)
		if len(m.TemplateKeyValue) > 0 {
			b = append(b, `,"templateKeyValue":`...)
			b = append(b, m.TemplateKeyValue...)
		}
		if len(m.ExtendedParams) > 0 {
			b = append(b, `,"extendedParams":`...)
			b = append(b, m.ExtendedParams...)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

// ObjectOf is the JSON object {keys[0]: values[0], …} with string values, in
// that order (a template's values, say). keys and values have the same length.
func ObjectOf(keys, values []string) Object {
	b := make([]byte, 0, 16*len(keys))
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, values[i])
	}
	return Object(append(b, '}'))
}

const hexDigits = "0123456789abcdef"

// appendString quotes s as encoding/json does with HTML escaping off.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
