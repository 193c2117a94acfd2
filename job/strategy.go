package job

import (
	"encoding/json"
	"fmt"
	"time"
)

// Strategy is the content of strategyContent: when a scheduled (strategyType 1) or
// recurring (strategyType 2) push runs. Times are Unix milliseconds.
type Strategy struct {
	FixedTime   *int64  // strategyType 1: when to push
	StartTime   *int64  // strategyType 2: first day of the window
	EndTime     *int64  // strategyType 2: last day of the window
	CircleType  *int64  // strategyType 2: likely 1 daily, 2 weekly, 3 monthly (unconfirmed)
	CircleValue []int64 // strategyType 2: days of the week or month
	Time        *string // strategyType 2: HH:mm:ss
}

// ParseStrategy reads strategyContent strictly: known fields only, integers as
// JSON integers.
func ParseStrategy(o Object) (Strategy, error) {
	var s Strategy
	members, err := parseMembers(o)
	if err != nil {
		return s, invalid("strategyContent", "not a JSON object")
	}
	seen := map[string]bool{}
	for _, m := range members {
		field := "strategyContent." + m.key
		if seen[m.key] {
			return s, invalid(field, "field given more than once")
		}
		seen[m.key] = true
		if isNull(m.value) {
			continue
		}
		switch m.key {
		case "fixedTime":
			s.FixedTime, err = parseIntPtr(field, m.value)
		case "startTime":
			s.StartTime, err = parseIntPtr(field, m.value)
		case "endTime":
			s.EndTime, err = parseIntPtr(field, m.value)
		case "circleType":
			s.CircleType, err = parseIntPtr(field, m.value)
		case "circleValue":
			s.CircleValue, err = parseIntList(field, m.value)
		case "time":
			var t string
			t, err = parseString(field, m.value)
			s.Time = &t
		default:
			err = invalid(field, "unknown field (known: fixedTime, startTime, endTime, circleType, circleValue, time)")
		}
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

func parseIntList(field string, raw json.RawMessage) ([]int64, error) {
	if kindOf(raw) != "an array" {
		return nil, invalid(field, "must be an array of integers, not "+kindOf(raw))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, invalid(field, "must be an array of integers")
	}
	out := make([]int64, 0, len(items))
	for _, it := range items {
		n, err := parseInt(field, it)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func (j *Job) checkStrategy(r Rules) error {
	st := int64(0)
	if j.StrategyType != nil {
		st = *j.StrategyType
	}
	if st < 0 || st > 2 {
		return invalid("strategyType", fmt.Sprintf("must be 0 (now), 1 (once at fixedTime) or 2 (recurring), not %d", st))
	}
	var s Strategy
	if len(j.StrategyContent) > 0 {
		var err error
		if s, err = ParseStrategy(j.StrategyContent); err != nil {
			return err
		}
	}
	switch st {
	case 1:
		return checkFixed(s, r)
	case 2:
		return checkRecurring(s, r)
	}
	return nil
}

func checkFixed(s Strategy, r Rules) error {
	if s.FixedTime == nil {
		return invalid("strategyContent.fixedTime", "required when strategyType is 1")
	}
	if !r.SkipTimeRules && *s.FixedTime <= r.Now.UnixMilli() {
		return invalid("strategyContent.fixedTime", "must be in the future")
	}
	return nil
}

func checkRecurring(s Strategy, r Rules) error {
	const why = "required when strategyType is 2"
	switch {
	case s.StartTime == nil:
		return invalid("strategyContent.startTime", why)
	case s.EndTime == nil:
		return invalid("strategyContent.endTime", why)
	case s.CircleType == nil:
		return invalid("strategyContent.circleType", why)
	case len(s.CircleValue) == 0:
		return invalid("strategyContent.circleValue", why)
	case s.Time == nil:
		return invalid("strategyContent.time", why)
	}
	// The circleType and circleValue values are not confirmed (docs/mpaas.md): any integers are accepted.
	if !clockPattern.MatchString(*s.Time) {
		return invalid("strategyContent.time", "must be HH:mm:ss, not "+quote(*s.Time))
	}
	if *s.EndTime < *s.StartTime {
		return invalid("strategyContent.endTime", "must not be before startTime")
	}
	if r.SkipTimeRules {
		return nil
	}
	now := r.Now.In(r.Zone)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, r.Zone)
	if *s.StartTime < today.UnixMilli() {
		return invalid("strategyContent.startTime", "must not be before today 00:00 ("+r.Zone.String()+")")
	}
	// The end may fall anywhere on the 180th day after today, not later.
	lastDay := today.AddDate(0, 0, recurringWindowDays+1)
	if *s.EndTime >= lastDay.UnixMilli() {
		return invalid("strategyContent.endTime", fmt.Sprintf("must not be more than %d days after today (%s)", recurringWindowDays, r.Zone))
	}
	return nil
}
