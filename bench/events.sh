#!/usr/bin/env bash
# What a worker adds to a one-target event job, as docs/performance.md's "Event latency"
# gives it: pushbench publishes one-target event jobs, 100 a second, and times each
# from its publish to its result, against a bare SDK call to the same emulator timed
# in the same run (--events-bare); every run on one machine, one worker, no rate limit.
#
#   bench/events.sh                          # every run below, about 3 minutes on 2 cores
#   RUNS="idle queue-only" bench/events.sh
#   WORKER_BIN=/tmp/old/worker bench/events.sh   # another worker build under the same bench
#
# Runs: idle (the worker alone), queue-only (no worker: the worker's own queue in the
# bench answers each event at once, no Redis, no mPaaS call: JetStream's way in and out,
# the floor under what a worker adds), beside-campaign (the events while a 200,000-target
# campaign saturates the bulk lane). Needs nats-server on PATH, a local Redis (REDIS_URL,
# default 127.0.0.1:6379) and python3. Builds the binaries from the working tree first;
# run it on a quiet machine (no other worker, emulator or bench: check ps).
set -euo pipefail

main() {
# shellcheck source=bench/build.sh
. "$(dirname "$0")/build.sh"
events=${EVENTS:-1000}

declare -A args=(
	[idle]="--workers 1 --targets 0"
	[queue-only]="--queue-only --targets 0"
	[beside-campaign]="--workers 1 --targets 200000 --job-size 100 --skip-bare"
)
runs=${RUNS:-idle queue-only beside-campaign}
printf '%-16s %7s %17s %17s %17s %12s\n' run events 'event p50/p99 ms' 'bare p50/p99 ms' 'added p50/p99 ms' 'worker/event'
for run in $runs; do
	n=$events
	[ "$run" = beside-campaign ] && n=300
	# shellcheck disable=SC2086
	"$dir/pushbench" --worker-bin "$worker" --sim-bin "$dir/mpaas-sim" ${args[$run]} --events "$n" --events-per-sec 100 --events-bare >"$dir/$run.json" 2>"$dir/$run.log" ||
		{ cat "$dir/$run.log" >&2; exit 1; }
	python3 - "$run" "$dir/$run.json" <<'PY'
import json, sys
run, path = sys.argv[1], sys.argv[2]
r = json.load(open(path)); e = r["events"]; b = e["bare"]
per = "%8.0f µs" % r["cost"]["workerCpuUsPerJob"] if run == "idle" else "%11s" % "-"
print("%-16s %7d %8.2f / %6.2f %8.2f / %6.2f %8.2f / %6.2f %s" % (run, e["jobs"], e["enqueueToResultP50ms"], e["enqueueToResultP99ms"],
      b["p50ms"], b["p99ms"], e["addedP50ms"], e["addedP99ms"], per))
PY
done
}

main "$@"
