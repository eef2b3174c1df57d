#!/usr/bin/env bash
# Builds Anteroom and the load generator, then runs every figure against a
# redis-server the bench starts itself on a free port (never 6379).
# Prints a table to stdout and writes bench/results.json.
#
#   bash bench/run.sh                 # defaults: 32 clients, 10s per figure, N=200000
#   bash bench/run.sh -c 64 -d 5s -n 500000 -flows=false
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in redis-server redis-benchmark; do
	command -v "$bin" >/dev/null || { echo "bench: $bin is required (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/anteroom" ./cmd/anteroom
go build -o "$tmp/anteroom-bench" ./bench
"$tmp/anteroom-bench" -anteroom "$tmp/anteroom" -out bench/results.json "$@"
