# Sourced by the bench scripts: builds pushbench, the worker and the emulator from
# the working tree into a temp dir ($dir, removed on exit) and sets $worker
# (WORKER_BIN, or the build).
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "building from $(git rev-parse --short HEAD)$(git diff --quiet -- '*.go' go.mod go.sum || echo ' (with uncommitted Go changes)')" >&2
go build -o "$dir/pushbench" ./cmd/pushbench
go build -o "$dir/worker" ./cmd/worker
go build -o "$dir/mpaas-sim" ./cmd/mpaas-sim
worker=${WORKER_BIN:-$dir/worker}
