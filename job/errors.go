package job

import "errors"

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
	return e.Field + ": " + e.Rule
}

// Is makes every FieldError match ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, rule string) error { return &FieldError{Field: field, Rule: rule} }
