package job

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// ErrInvalid matches every error that Decode and Validate return: the job itself is
// wrong, and no retry can fix it.
var ErrInvalid = errors.New("invalid job")

// FieldError says which field broke which rule.
type FieldError struct {
	Field string // the job's field name as written ("targetMsgkey", "strategyContent.time"); empty for the message as a whole
	Rule  string // what is wrong, in one line
}

// Error is one line of at most a few hundred bytes: the field and the values a
// rule quotes come from the producer, and are clipped (MaxEcho) wherever the
// error goes (a result, a dead letter's header, a log line, the console).
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return fieldText(e.Field) + ": " + e.Rule
}

// MaxEcho is how many bytes of a name or value from the message an error quotes.
const MaxEcho = 128

// fieldText shows a field name as it is when it is plainly a name, and quoted
// otherwise: a name comes from the message, and control characters or quotes in it
// must not break the one-line error or the log line that carries it. A long name
// is clipped, with its length.
func fieldText(f string) string {
	if len(f) > MaxEcho {
		return quote(f)
	}
	for _, c := range f {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '[' || c == ']') {
			return quote(f)
		}
	}
	return f
}

// MaxEchoLine is how many bytes of producer input any one echo of it carries
// (an error, a dead letter's header, a log field): room for a quoted MaxEcho
// bytes, each escaped to at most 6 bytes, and the clipping note.
const MaxEchoLine = 6*MaxEcho + 32

// Clip is s when it has at most MaxEchoLine bytes, else its first whole runes
// and its length: every place that echoes text from the message (or built
// from it) passes it through here, so that no result, dead letter or log line
// grows with the input.
func Clip(s string) string {
	if len(s) <= MaxEchoLine {
		return s
	}
	note := "… (" + strconv.Itoa(len(s)) + " bytes)"
	cut := MaxEchoLine - len(note)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// quote is %q of at most MaxEcho bytes of s (whole runes), with its length in
// bytes when it was clipped: a value of the message as an error quotes it.
func quote(s string) string {
	if len(s) <= MaxEcho {
		return strconv.Quote(s)
	}
	cut := MaxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "… (" + strconv.Itoa(len(s)) + " bytes)"
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, rule string) error { return &FieldError{Field: field, Rule: rule} }
