package job

// checkServed refuses a job for an app that no credential of the worker serves
// (Rules.Served): no call could be signed for it.
func (j *Job) checkServed(r Rules) error {
	if r.Served == nil || r.Served(j.AppID) {
		return nil
	}
	return invalid("appId", "no credential of the workers serves app "+quote(j.AppID)+" (MPAAS_CREDENTIALS_FILE lists the apps of each AccessKey)")
}
