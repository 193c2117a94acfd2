package topology_test

import (
	"testing"

	"github.com/mpaas-push/pushworker/topology"
)

func TestDefaultIsThePublicInterface(t *testing.T) {
	d := topology.Default()
	for got, want := range map[string]string{
		d.DefaultLaneSubjects():                      "push.jobs.*",
		d.BulkLaneSubjects():                         "push.jobs.bulk.>",
		d.ResultSubjects():                           "push.results.>",
		d.DLQSubjects():                              "push.dlq.>",
		d.ResultSubject("", "j1"):                    "push.results.j1",
		d.ResultSubject("push.results.x", "j1"):      "push.results.x",
		d.EventsSubject("orders"):                    "push.jobs.orders",
		d.BulkSubject("spring"):                      "push.jobs.bulk.spring",
		d.DLQSubject("j1"):                           "push.dlq.j1",
		d.JobsStream + d.ResultsStream + d.DLQStream: "PUSH_JOBSPUSH_RESULTSPUSH_DLQ",
		d.Durable + " " + d.BulkDurable:              "push-worker push-worker-bulk",
		d.CampaignsBucket + " " + d.ParkedStream:     "PUSH_CAMPAIGNS PUSH_PARKED",
		d.ParkedSubject("spring", "j1"):              "push.parked.spring.j1",
		d.CampaignParked("spring"):                   "push.parked.spring.>",
		d.ParkedSubjects():                           "push.parked.>",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if (topology.Topology{}).OrDefault() != d {
		t.Error("the zero value must mean the default")
	}
}

func TestReplyToFollowsTheRoot(t *testing.T) {
	other := topology.Default().Suffixed("T1")
	for _, c := range []struct {
		topo  topology.Topology
		s     string
		valid bool
	}{
		{topology.Default(), "push.results.orders", true},
		{topology.Default(), "push.results.a.b", true},
		{topology.Default(), "push.results.", false},
		{topology.Default(), "push.results.a..b", false},
		{topology.Default(), "push.results.*", false},
		{topology.Default(), "push.results.a b", false},
		{topology.Default(), "other.results.a", false},
		{other, "pushT1.results.a", true},
		{other, "push.results.a", false},
	} {
		if got := c.topo.ValidReplyTo(c.s); got != c.valid {
			t.Errorf("%s ValidReplyTo(%q) = %v, want %v", c.topo.Root, c.s, got, c.valid)
		}
	}
}

func TestLane(t *testing.T) {
	d := topology.Default()
	for s, want := range map[string]string{
		"push.jobs.orders":            topology.LaneDefault,
		"push.jobs.bulk.spring":       topology.LaneBulk,
		"push.jobs.bulk.spring.part2": topology.LaneBulk,
		"push.jobs.bulk":              topology.LaneDefault, // a one-token name, as the stream takes it
		"push.jobs.a.b":               "",
		"push.jobs.":                  "",
		"push.jobs.*":                 "",
		"push.results.x":              "",
		"push.jobs.bulk..x":           "",
	} {
		if got := d.Lane(s); got != want {
			t.Errorf("Lane(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestCampaign(t *testing.T) {
	d := topology.Default()
	for s, want := range map[string]string{
		"push.jobs.bulk.spring-2026":       "spring-2026",
		"push.jobs.bulk.spring-2026.part2": "spring-2026",
		"push.jobs.orders":                 "",
		"push.jobs.bulk":                   "",
		"push.jobs.bulk..x":                "",
		"other.jobs.bulk.x":                "",
	} {
		if got := d.Campaign(s); got != want {
			t.Errorf("Campaign(%q) = %q, want %q", s, got, want)
		}
	}
	if got := d.Suffixed("-t1").Campaign("push-t1.jobs.bulk.c1.x"); got != "c1" {
		t.Errorf("a suffixed topology: %q", got)
	}
}

func TestAdminSubjects(t *testing.T) {
	d := topology.Default()
	if d.AdminSubject("spring") != "push.jobs.bulk.spring.admin" || d.AdminSubject("") != "push.jobs.bulk.admin" {
		t.Fatal(d.AdminSubject("spring"), d.AdminSubject(""))
	}
	for s, want := range map[string]bool{
		"push.jobs.bulk.spring.admin": true, "push.jobs.bulk.admin": true,
		"push.jobs.bulk.spring": false, "push.jobs.bulk.spring.part2.admin": false, "push.jobs.admin": false,
	} {
		if got := d.IsAdmin(s); got != want {
			t.Errorf("IsAdmin(%q) = %v", s, got)
		}
	}
	if c := d.Campaign("push.jobs.bulk.admin"); c != "" {
		t.Errorf("the event jobs' admin subject has no campaign: %q", c)
	}
	if c := d.Campaign("push.jobs.bulk.spring.admin"); c != "spring" {
		t.Errorf("a campaign's admin subject: %q", c)
	}
}
