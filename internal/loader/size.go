package loader

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mpaas-push/pushworker/job"
)

// HeaderRoom is what a job's body leaves of the server's max_payload for the
// message's headers: Nats-Msg-Id (a job id, 128 bytes at most) and the trace
// context (traceparent, and a tracestate of up to 512 bytes).
const HeaderRoom = 1024

// DefaultMaxPayload is a NATS server's max_payload unless configured (1 MiB); a
// dry run, which has no server, splits jobs against it.
const DefaultMaxPayload = 1 << 20

// JobLimit is the largest job body a server takes: its max_payload, or the job
// stream's max_msg_size when that is smaller and set, less HeaderRoom.
func JobLimit(maxPayload int64, streamMaxMsgSize int32) int {
	limit := maxPayload
	if streamMaxMsgSize > 0 && int64(streamMaxMsgSize) < limit {
		limit = int64(streamMaxMsgSize)
	}
	return int(max(limit-HeaderRoom, 1))
}

// quotedLen is the length of s as job.Encode quotes it (encoding/json with HTML
// escaping off), counted without writing it.
func quotedLen(s string) int {
	n := 2 + len(s)
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n++
			case c < 0x20:
				n += 5
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			n += 5 // one byte becomes \ufffd
		case r == '\u2028' || r == '\u2029':
			n += 3 // three bytes become \u2028
		}
		i += size
	}
	return n
}

// overhead is the size of base's body with no targets and the longest job id,
// so that it bounds every job the loader makes from base.
func overhead(base *job.Job) (int, error) {
	j := *base
	j.JobID = strings.Repeat("x", job.MaxJobIDLength)
	j.TargetMsgkey, j.TargetMsgs, j.TemplateKeyValue = nil, nil, nil
	b, err := j.Encode()
	return len(b), err
}

// contentID is a job's id: the campaign, a kind (m, t, line) and the line of the job's
// first row, then 12 hex digits of a hash of what the job carries (its targets,
// msgKeys and values). A rerun of the same file gives the same ids, so the job
// stream drops what it already has; another file of the same campaign gives other
// ids even where its rows stand on the same lines.
func contentID(campaign, kind string, line int, h hash.Hash) string {
	var sum [sha256.Size]byte
	return campaign + "." + kind + strconv.Itoa(line) + "." + hex.EncodeToString(h.Sum(sum[:0])[:6])
}

// hashField writes s to h with its length first, so that ("ab","c") and
// ("a","bc") hash apart.
func hashField(h hash.Hash, s string) {
	var n [8]byte
	h.Write(strconv.AppendInt(n[:0], int64(len(s)), 10))
	h.Write([]byte{':'})
	h.Write([]byte(s))
}
