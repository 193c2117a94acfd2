#!/usr/bin/env bash
# Loads a personal campaign (every row its own template values) end to end and
# reports what it cost: mPaaS calls, time from the start of the load to the last
# result, loader and worker peak RSS.
#
#   bench/personal-campaign.sh [ROWS] [API] [WORKERS]     # defaults: 1000000 auto 2
#   PERSONAL=50 bench/personal-campaign.sh 3000 template  # half the rows personal
#
# It runs its own nats-server (the machine's binary, on a free port, in a temp
# dir), the project's emulator with 50 ms latency, WORKERS workers at
# PUSH_RATE_LIMIT (default 100) on the local Redis under a key prefix of its own,
# and `enqueue load --api API --wait`; at the end it stops them all and deletes
# the run's Redis keys and temp dir. Needs nats-server, redis-cli, /usr/bin/time.
set -euo pipefail

# All of it in one function, read whole before it runs: editing the file during
# a run cannot change the run.
main() {
ROWS=${1:-1000000}
API=${2:-auto}
WORKERS=${3:-2}
RATE=${PUSH_RATE_LIMIT:-100}
LATENCY=${LATENCY:-50ms}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
cd "$(dirname "$0")/.."

dir=$(mktemp -d /tmp/personal-campaign.XXXXXX)
prefix="bench-personal:$$:$(date +%s):"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	# The dedupe keys hold binary hashes, which xargs cannot pass: unlink them server-side, a SCAN page at a time.
	local cursor=0
	while :; do
		cursor=$(redis-cli -u "$REDIS_URL" EVAL "local r = redis.call('SCAN', ARGV[2], 'MATCH', ARGV[1], 'COUNT', 5000)
for _, k in ipairs(r[2]) do redis.call('UNLINK', k) end
return r[1]" 0 "${prefix}*" "$cursor") || break
		[ "$cursor" = 0 ] && break
	done
	rm -rf "$dir"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

echo "building from $(git rev-parse --short HEAD)$(git diff --quiet -- '*.go' go.mod go.sum || echo ' (with uncommitted Go changes)')" >&2
go build -o "$dir/worker" ./cmd/worker
go build -o "$dir/enqueue" ./cmd/enqueue
go build -o "$dir/mpaas-sim" ./cmd/mpaas-sim

# PERSONAL (percent, default 100) of the rows have a name of their own; the rest share one.
awk -v n="$ROWS" -v p="${PERSONAL:-100}" 'BEGIN{print "target,name,money"; for(i=0;i<n;i++) if (i%100 < p) printf "user%07d,用户%d,%d\n", i, i, i%1000; else printf "user%07d,张三,200\n", i}' > "$dir/personal.csv"

nats_port=$(free_port)
nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$dir/js" >"$dir/nats.log" 2>&1 &
pids+=($!)
sim_port=$(free_port)
MPAAS_AK_ENV=bench-key MPAAS_SK_ENV=bench-secret "$dir/mpaas-sim" -addr "127.0.0.1:$sim_port" -latency "$LATENCY" >"$dir/sim.log" 2>&1 &
pids+=($!)
wait_port "$nats_port"
wait_port "$sim_port"

export NATS_URL="nats://127.0.0.1:$nats_port" REDIS_URL PUSH_REDIS_PREFIX="$prefix" PUSH_RATE_LIMIT="$RATE" \
	MPAAS_ENDPOINT="http://127.0.0.1:$sim_port" MPAAS_AK_ENV=bench-key MPAAS_SK_ENV=bench-secret \
	PUSH_HTTP_ADDR=127.0.0.1:0 PUSH_LOG_LEVEL=warn
worker_pids=()
for i in $(seq "$WORKERS"); do
	"$dir/worker" >"$dir/worker$i.log" 2>&1 &
	pids+=($!)
	worker_pids+=($!)
done
for _ in $(seq 100); do
	if grep -q "worker started" "$dir"/worker*.log 2>/dev/null && [ "$(grep -l "worker started" "$dir"/worker*.log | wc -l)" -eq "$WORKERS" ]; then break; fi
	sleep 0.1
done

start=$(date +%s.%N)
/usr/bin/time -f "%M" -o "$dir/loader.rss" "$dir/enqueue" load --campaign "personal$$" --api "$API" \
	--app-id A --workspace-id W --template T --delivery-type 3 --expired-seconds 3600 \
	--wait --timeout 30m "$dir/personal.csv" >"$dir/load.out" 2>"$dir/load.err" || { cat "$dir/load.out" "$dir/load.err" >&2; exit 1; }
end=$(date +%s.%N)

stats=$(curl -s "http://127.0.0.1:$sim_port/sim/stats")
last_call=$(curl -s "http://127.0.0.1:$sim_port/sim/calls" | python3 -c 'import json,sys,datetime; c=json.load(sys.stdin); print(max(datetime.datetime.fromisoformat(x["at"].replace("Z","+00:00")).timestamp() for x in c))')
worker_rss=0
worker_cpu=0
for p in "${worker_pids[@]}"; do
	rss=$(awk '/VmHWM/{print $2}' "/proc/$p/status")
	[ "$rss" -gt "$worker_rss" ] && worker_rss=$rss
	cpu=$(awk '{print $14+$15}' "/proc/$p/stat")
	worker_cpu=$((worker_cpu + cpu))
done
cat "$dir/load.out"
grep '^jobs:' "$dir/load.err" || true
python3 - "$stats" "$start" "$end" "$(cat "$dir/loader.rss")" "$worker_rss" "$worker_cpu" "$ROWS" "$API" "$WORKERS" "$RATE" "$LATENCY" "$last_call" "${PERSONAL:-100}" <<'PY'
import json, sys
st = json.loads(sys.argv[1])
start, end = float(sys.argv[2]), float(sys.argv[3])
print(json.dumps({
    "rows": int(sys.argv[7]), "personalPercent": int(sys.argv[13]), "api": sys.argv[8], "workers": int(sys.argv[9]), "rateLimit": int(sys.argv[10]),
    "emulatorLatency": sys.argv[11],
    "calls": st["calls"], "callsByAPI": {k: v["calls"] for k, v in st["byAPI"].items()},
    "pairs": st["pairs"], "duplicatePairs": st["duplicatePairs"],
    "maxCallsInOneSecond": st["maxCallsInOneSecond"], "meanCallsPerSecond": round(st["meanCallsPerSecond"], 1),
    "loadStartToLastResultSeconds": round(end - start, 1),
    "lastCallToLastResultSeconds": round(end - float(sys.argv[12]), 2),
    "loaderPeakRssMB": round(int(sys.argv[4]) / 1024, 1), "workerPeakRssMB": round(int(sys.argv[5]) / 1024, 1),
    "workerCpuSeconds": round(int(sys.argv[6]) / 100, 1),
}, indent=2))
PY
}

main "$@"
