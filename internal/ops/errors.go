package ops

import "errors"

// Sentinel errors: test with errors.Is. The wrapping error says which name or
// sequence it was about.
var (
	// ErrUnknownCampaign: no job of the campaign was ever queued, parked or done.
	ErrUnknownCampaign = errors.New("unknown campaign")
	// ErrCanceled: the campaign is canceled, and stays so until its state is deleted.
	ErrCanceled = errors.New("campaign canceled")
	// ErrNotFound: no such dead letter, result or job.
	ErrNotFound = errors.New("not found")
	// ErrNothingToRecall: the stored results hold nothing the recall takes back.
	ErrNothingToRecall = errors.New("nothing to recall")
	// ErrNoWorkers: no worker answered a question that only workers can answer.
	ErrNoWorkers = errors.New("no worker answered")
	// ErrTimedOut: what was followed did not end within the time given.
	ErrTimedOut = errors.New("timed out")
	// ErrUnreadable: a stored value or message cannot be decoded.
	ErrUnreadable = errors.New("unreadable")
)
