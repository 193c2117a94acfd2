#!/usr/bin/env bash
# The cost of one push, as docs/performance.md's "Cost per push" table gives it: pushbench
# runs on one machine, each printing its cost figures (CPU per call and per job of
# the worker, redis-server and nats-server from /proc, the bare SDK client's own
# CPU per call, Redis commands per call and used_memory per remembered pair).
#
#   bench/cost.sh                # every run below, about 5 minutes on 2 cores
#   RUNS="template-100" bench/cost.sh
#   WORKER_BIN=/tmp/old/worker bench/cost.sh   # another worker build (an earlier commit's) under the same bench
#   RUNS="template-100 template-100-traced events-one-target events-one-target-traced" bench/cost.sh
#                                # tracing off and on (every job sampled, exported to a sink in the bench)
#   RUNS="cold-40k warm-40k queue-40k" bench/cost.sh
#                                # a short campaign on a fresh worker, the same after a campaign of
#                                # its size (--warmup), and the queue alone (no worker: nats-server's
#                                # CPU per job of JetStream's way in and out)
#
# Needs nats-server on PATH, a local Redis (REDIS_URL, default 127.0.0.1:6379) and
# python3. Builds the binaries from the working tree first; run it on a quiet
# machine (no other worker, emulator or bench: check ps).
set -euo pipefail

main() {
# shellcheck source=bench/build.sh
. "$(dirname "$0")/build.sh"

declare -A args=(
	[template-100]="--workers 1 --targets 300000 --job-size 100"
	[template-1000]="--workers 1 --targets 300000 --job-size 1000"
	[multiple-personal]="--workers 1 --targets 300000 --job-size 1000 --api multiple --personal"
	[events-one-target]="--workers 2 --targets 6000 --job-size 1 --latency 5ms --lane default"
	[bulk-one-target]="--workers 2 --targets 6000 --job-size 1 --latency 5ms"
	[memory-1m]="--workers 1 --targets 1000000 --job-size 1000 --skip-bare"
	[template-100-traced]="--workers 1 --targets 300000 --job-size 100 --traces"
	[events-one-target-traced]="--workers 2 --targets 6000 --job-size 1 --latency 5ms --lane default --traces"
	[cold-40k]="--workers 1 --targets 40000 --job-size 100"
	[warm-40k]="--workers 1 --targets 40000 --job-size 100 --warmup 40000"
	[queue-40k]="--queue-only --targets 40000 --job-size 100 --skip-bare"
)
runs=${RUNS:-template-100 template-1000 multiple-personal events-one-target bulk-one-target memory-1m}
printf '%-18s %9s %10s %6s %11s %11s %7s %10s %8s %10s %10s %9s %7s\n' run targets/s 'bare/s' eff 'worker/call' 'bare/call' ratio 'worker/job' 'redis/call' 'cmds/call' 'nats/job' 'B/pair' 'RSS MB'
for run in $runs; do
	# shellcheck disable=SC2086
	"$dir/pushbench" --worker-bin "$worker" --sim-bin "$dir/mpaas-sim" ${args[$run]} >"$dir/$run.json" 2>"$dir/$run.log" ||
		{ cat "$dir/$run.log" >&2; exit 1; }
	python3 - "$run" "$dir/$run.json" <<'EOF'
import json, sys
run, path = sys.argv[1], sys.argv[2]
r = json.load(open(path)); c = r["cost"]
bare = (r["bare"]["beforeCallsPerSec"] + r["bare"]["afterCallsPerSec"]) / 2
print("%-18s %9.0f %10.0f %6.3f %9.0f µs %9.0f µs %7.2f %8.0f µs %6.0f µs %10.1f %8.0f µs %9.1f %7.1f" % (run, r["targetsPerSec"], bare, r["efficiency"],
      c["workerCpuUsPerCall"], c["bareClientCpuUsPerCall"], c["workerOverBareClient"], c["workerCpuUsPerJob"], c["redisCpuUsPerCall"],
      c["redisCommandsPerCall"], c["natsCpuUsPerJob"], c["redisBytesPerRememberedPair"], r["workerPeakRssMB"]))
EOF
done
}

main "$@"
