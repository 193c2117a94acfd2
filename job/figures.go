package job

// Figures are what mPaaS counted of pushes, after a delay: the answer of
// QueryPushAnalysisTaskDetail and QueryPushAnalysisCoreIndex, and a campaign's
// delivery report (docs/reports.md).
type Figures struct {
	Pushed    int64 `json:"pushed"`    // PushTotalNum (older answers: PushNum)
	Succeeded int64 `json:"succeeded"` // PushSuccessNum
	Arrived   int64 `json:"arrived"`   // PushArrivalNum (older answers: ArrivalNum)
	Opened    int64 `json:"opened"`    // OpenNum (on iOS only opens are counted)
	Ignored   int64 `json:"ignored"`   // IgnoreNum
}

// Add adds g to f.
func (f *Figures) Add(g Figures) {
	f.Pushed += g.Pushed
	f.Succeeded += g.Succeeded
	f.Arrived += g.Arrived
	f.Opened += g.Opened
	f.Ignored += g.Ignored
}

// Zero: nothing counted.
func (f Figures) Zero() bool { return f == Figures{} }

// ArrivalRate is arrived of pushed (0 when nothing was pushed).
func (f Figures) ArrivalRate() float64 { return share(f.Arrived, f.Pushed) }

// OpenRate is opened of pushed (0 when nothing was pushed): of pushed, not of
// arrived, since on iOS only opens are counted.
func (f Figures) OpenRate() float64 { return share(f.Opened, f.Pushed) }

func share(n, of int64) float64 {
	if of <= 0 {
		return 0
	}
	return float64(n) / float64(of)
}
