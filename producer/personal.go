package producer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/mpaas-push/pushworker/job"
)

// Personal is one target of a job with a value per target (a targetMsgs job,
// sent with mPaaS PushMultiple): its msgKey and its own template values, such as
// {"name": "张三", "money": "200"} for "Hi #name#, you won #money#". values may
// be nil.
func Personal(target, msgKey string, values map[string]string) job.TargetMsg {
	return job.TargetMsg{Target: target, MsgKey: msgKey, TemplateKeyValue: object(values)}
}

// PersonalWith is Personal with this target's own extended parameters (fewer
// than 10 keys, none of job.ReservedExtendedParams).
func PersonalWith(target, msgKey string, values, extendedParams map[string]string) job.TargetMsg {
	m := Personal(target, msgKey, values)
	m.ExtendedParams = object(extendedParams)
	return m
}

// object is m as a JSON object, nil when m is empty (a map of strings always
// marshals, with its keys sorted).
func object(m map[string]string) job.Object {
	if len(m) == 0 {
		return nil
	}
	b, _ := json.Marshal(m)
	return job.Object(b)
}

// ErrBaseHasTargets is returned by PersonalJobs for a base job that already
// carries targets or template values: those come with each target.
var ErrBaseHasTargets = errors.New("the base job carries targets or templateKeyValue: give them per target")

// PersonalJobs builds targetMsgs jobs from base (the parameters every target
// shares: appId, workspaceId, templateName, …) and msgs, in order, at most
// perJob targets each (0 means job.DefaultMaxTargets). Job i is named
// <idPrefix>.<i>, so building the same list again gives the same ids and a
// re-publish is dropped by the job stream. Each job still passes Validate when
// it is published.
func PersonalJobs(base *job.Job, idPrefix string, msgs []job.TargetMsg, perJob int) ([]*job.Job, error) {
	if base.TargetCount() > 0 || len(base.TemplateKeyValue) > 0 {
		return nil, ErrBaseHasTargets
	}
	if perJob <= 0 {
		perJob = job.DefaultMaxTargets
	}
	if !job.ValidJobID(idPrefix + ".0") {
		return nil, fmt.Errorf("idPrefix %q: dot-separated tokens of letters, digits, '-', '_' or ':'", idPrefix)
	}
	jobs := make([]*job.Job, 0, (len(msgs)+perJob-1)/perJob)
	for i := 0; len(msgs) > 0; i++ {
		n := min(perJob, len(msgs))
		j := *base
		j.JobID = idPrefix + "." + strconv.Itoa(i)
		j.TargetMsgs = msgs[:n:n]
		jobs = append(jobs, &j)
		msgs = msgs[n:]
	}
	return jobs, nil
}
