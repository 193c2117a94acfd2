package config

// RedisKeys is the worker's Redis key layout, every key under PUSH_REDIS_PREFIX
// (docs/redis.md describes each; a test holds the two equal). The parts take
// their prefixes from here, so that an ACL on the prefix covers every key.
type RedisKeys struct {
	Dedupe    string // claims and sent marks: <prefix>d:<12 bytes>, call records <prefix>d:r:<hour>:<shard>
	OldDedupe string // an earlier version's pairs, read with PUSH_DEDUPE_READ_OLD: <prefix>dedupe:<hex>
	Limit     string // the shared GCRA limit, and <Limit>:bulk, :events, :adaptive
	// Credential is a credential's own limit (a credentials file):
	// <Credential><AccessKey id>, and its :bulk, :events, :adaptive.
	Credential string
	Pace       string // a paced campaign's GCRA: <prefix>pace:<campaign>
	Totals     string // a campaign's totals: <prefix>campaign:<campaign>, and the index <prefix>campaign:*index
	Reports    string // a finished campaign's delivery figures: <prefix>campaign:*report:<campaign> ('*' is in no name)
}

// RedisKeys is the key layout under w's prefix.
func (w *Worker) RedisKeys() RedisKeys {
	p := w.RedisPrefix
	return RedisKeys{Dedupe: p + "d:", OldDedupe: p + "dedupe:", Limit: p + "rate:mpaas", Credential: p + "rate:ak:", Pace: p + "pace:",
		Totals: p + "campaign:", Reports: p + "campaign:*report:"}
}
