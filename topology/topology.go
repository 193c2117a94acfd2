// Package topology names every subject, stream and consumer of the worker's
// JetStream surface. It is the one owner of those names: the job package, the
// producer, the worker, the loader, the bench and the tests all take them from a
// Topology value, so that a deployment (or a test sharing a server) can move the
// whole surface under another root and every part still agrees.
package topology

import "strings"

// Topology is one set of names. The zero value is not usable: start from Default.
type Topology struct {
	Root          string // subject root: "push" gives push.jobs.*, push.results.>, push.dlq.>
	JobsStream    string
	ResultsStream string
	DLQStream     string
	Durable       string // the default (events) lane's consumer
	BulkDurable   string // the bulk lane's consumer

	CampaignsBucket string // the key-value bucket of campaign control: key = campaign name
	ParkedStream    string // jobs of paused campaigns: <root>.parked.<campaign>.<jobId>
}

// The public names (docs/jobs.md, "Subjects and streams").
const (
	DefaultRoot          = "push"
	DefaultJobsStream    = "PUSH_JOBS"
	DefaultResultsStream = "PUSH_RESULTS"
	DefaultDLQStream     = "PUSH_DLQ"
	DefaultDurable       = "push-worker"
	DefaultBulkDurable   = "push-worker-bulk"

	DefaultCampaignsBucket = "PUSH_CAMPAIGNS"
	DefaultParkedStream    = "PUSH_PARKED"
)

// Lanes.
const (
	LaneDefault = "default" // business events: <root>.jobs.<name>
	LaneBulk    = "bulk"    // campaigns: <root>.jobs.bulk.<name>…
)

// Default is the public interface.
func Default() Topology {
	return Topology{Root: DefaultRoot, JobsStream: DefaultJobsStream, ResultsStream: DefaultResultsStream,
		DLQStream: DefaultDLQStream, Durable: DefaultDurable, BulkDurable: DefaultBulkDurable,
		CampaignsBucket: DefaultCampaignsBucket, ParkedStream: DefaultParkedStream}
}

// OrDefault is t, or Default when t is the zero value.
func (t Topology) OrDefault() Topology {
	if t.Root == "" {
		return Default()
	}
	return t
}

// Suffixed is t with every stream and consumer name ending in suffix and the
// root extended by it, so that tests and benches can share one server.
func (t Topology) Suffixed(suffix string) Topology {
	return Topology{Root: t.Root + suffix, JobsStream: t.JobsStream + "_" + suffix, ResultsStream: t.ResultsStream + "_" + suffix,
		DLQStream: t.DLQStream + "_" + suffix, Durable: t.Durable + "-" + suffix, BulkDurable: t.BulkDurable + "-" + suffix,
		CampaignsBucket: t.CampaignsBucket + "_" + suffix, ParkedStream: t.ParkedStream + "_" + suffix}
}

// Lane is one lane's names: its consumer and the subjects it takes.
type Lane struct {
	Name     string // LaneDefault or LaneBulk
	Consumer string
	Filter   string
}

// Lanes are both lanes, the default (events) lane first.
func (t Topology) Lanes() []Lane {
	return []Lane{{LaneDefault, t.Durable, t.DefaultLaneSubjects()}, {LaneBulk, t.BulkDurable, t.BulkLaneSubjects()}}
}

func (t Topology) jobsPrefix() string { return t.Root + ".jobs." }

// DefaultLaneSubjects is the default lane's filter: <root>.jobs.*.
func (t Topology) DefaultLaneSubjects() string { return t.jobsPrefix() + "*" }

// BulkLaneSubjects is the bulk lane's filter: <root>.jobs.bulk.>.
func (t Topology) BulkLaneSubjects() string { return t.jobsPrefix() + "bulk.>" }

// ResultSubjects is the result stream's filter: <root>.results.>.
func (t Topology) ResultSubjects() string { return t.Root + ".results.>" }

// DLQSubjects is the dead-letter stream's filter: <root>.dlq.>.
func (t Topology) DLQSubjects() string { return t.Root + ".dlq.>" }

// ResultPrefix starts every result subject.
func (t Topology) ResultPrefix() string { return t.Root + ".results." }

// EventsSubject is the default lane's subject for name (one token).
func (t Topology) EventsSubject(name string) string { return t.jobsPrefix() + name }

// BulkSubject is the bulk lane's subject for a campaign (one or more tokens).
func (t Topology) BulkSubject(campaign string) string { return t.jobsPrefix() + "bulk." + campaign }

// ResultSubject is where a job's result goes: replyTo when set, else <root>.results.<jobId>.
func (t Topology) ResultSubject(replyTo, jobID string) string {
	if replyTo != "" {
		return replyTo
	}
	return t.ResultPrefix() + jobID
}

// CampaignResults is the filter of a campaign's results when the loader names
// them <root>.results.<campaign>.<jobId>.
func (t Topology) CampaignResults(campaign string) string { return t.ResultPrefix() + campaign + ".>" }

// CampaignStatusSubject is where every worker answers a campaign status request
// (core NATS request/reply, no stream): <root>.campaigns.status.
func (t Topology) CampaignStatusSubject() string { return t.Root + ".campaigns.status" }

// ScheduledListSubject is the workers' NATS service endpoint that lists an app's
// pending scheduled tasks: <root>.admin.scheduled.list.
func (t Topology) ScheduledListSubject() string { return t.Root + ".admin.scheduled.list" }

// ReportSubject is the workers' NATS service endpoint that fetches a
// campaign's delivery figures from mPaaS: <root>.admin.campaigns.report.
func (t Topology) ReportSubject() string { return t.Root + ".admin.campaigns.report" }

// WorkersStatsSubject is the workers' NATS service endpoint where every worker
// says what it is doing: <root>.admin.workers.stats.
func (t Topology) WorkersStatsSubject() string { return t.Root + ".admin.workers.stats" }

// ParkedSubjects is the parking stream's filter: <root>.parked.>.
func (t Topology) ParkedSubjects() string { return t.Root + ".parked.>" }

// ParkedSubject is where a paused campaign's job waits: <root>.parked.<campaign>.<jobId>.
func (t Topology) ParkedSubject(campaign, jobID string) string {
	return t.Root + ".parked." + campaign + "." + jobID
}

// CampaignParked is the filter of one campaign's parked jobs.
func (t Topology) CampaignParked(campaign string) string {
	return t.Root + ".parked." + campaign + ".>"
}

// DLQSubject is the dead letter subject of a job.
func (t Topology) DLQSubject(jobID string) string { return t.Root + ".dlq." + jobID }

// ValidReplyTo reports whether s can be a job's replyTo: a subject under
// <root>.results.> with no wildcard, space or empty token.
func (t Topology) ValidReplyTo(s string) bool {
	rest, ok := strings.CutPrefix(s, t.ResultPrefix())
	return ok && len(s) <= 255 && validTokens(rest)
}

// Lane tells which lane a job subject belongs to, or "" when the job stream
// would not take it: <root>.jobs.<name> (one token) or <root>.jobs.bulk.<name>….
func (t Topology) Lane(subject string) string {
	rest, ok := strings.CutPrefix(subject, t.jobsPrefix())
	if !ok || !validTokens(rest) {
		return ""
	}
	if campaign, bulk := strings.CutPrefix(rest, "bulk."); bulk && campaign != "" {
		return LaneBulk
	}
	if strings.Contains(rest, ".") {
		return ""
	}
	return LaneDefault
}

// Campaign is the campaign of a bulk-lane subject: the token after bulk.
// (<root>.jobs.bulk.spring-2026.part2 is campaign spring-2026), or "" for any
// other subject.
func (t Topology) Campaign(subject string) string {
	if t.Lane(subject) != LaneBulk {
		return ""
	}
	rest := strings.TrimPrefix(subject, t.jobsPrefix()+"bulk.")
	campaign, _, _ := strings.Cut(rest, ".")
	if campaign == AdminToken {
		return "" // <root>.jobs.bulk.admin: admin jobs of event jobs, no campaign
	}
	return campaign
}

// AdminToken names admin jobs' subjects, and is a reserved campaign name.
const AdminToken = "admin"

// AdminSubject is where a campaign's admin jobs go, <root>.jobs.bulk.<campaign>.admin,
// or for event jobs (campaign "") <root>.jobs.bulk.admin.
func (t Topology) AdminSubject(campaign string) string {
	if campaign == "" {
		return t.BulkSubject(AdminToken)
	}
	return t.BulkSubject(campaign) + "." + AdminToken
}

// IsAdmin reports whether subject carries admin jobs.
func (t Topology) IsAdmin(subject string) bool {
	if t.Lane(subject) != LaneBulk {
		return false
	}
	rest := strings.TrimPrefix(subject, t.jobsPrefix()+"bulk.")
	return rest == AdminToken || strings.HasSuffix(rest, "."+AdminToken) && strings.Count(rest, ".") == 1
}

// validTokens: at least one token, none empty, no wildcard or white space.
func validTokens(s string) bool {
	if s == "" {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || strings.ContainsAny(tok, "*> \t\r\n") {
			return false
		}
	}
	return true
}
