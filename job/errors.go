package job

import (
	"errors"
	"strconv"
)

// ErrInvalid matches every error that Decode and Validate return: the job itself is
// wrong, and no retry can fix it.
var ErrInvalid = errors.New("invalid job")

// FieldError says which field broke which rule.
type FieldError struct {
	Field string // the job's field name as written ("targetMsgkey", "strategyContent.time"); empty for the message as a whole
	Rule  string // what is wrong, in one line
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Rule
	}
	return fieldText(e.Field) + ": " + e.Rule
}

// fieldText shows a field name as it is when it is plainly a name, and quoted
// otherwise: a name comes from the message, and control characters or quotes in it
// must not break the one-line error or the log line that carries it.
func fieldText(f string) string {
	for _, c := range f {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-' || c == '[' || c == ']') {
			return strconv.Quote(f)
		}
	}
	return f
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, rule string) error { return &FieldError{Field: field, Rule: rule} }
