#!/usr/bin/env bash
# Builds Anteroom and the load generator, then runs every figure against a
# redis-server (and, for figure 5, a 3-master Redis Cluster) that the bench
# starts itself on free ports (never 6379); figure 6 drives the two hot
# paths with wrk. Prints a table to stdout and
# writes bench/results.json. About four minutes with the defaults.
#
#   bash bench/run.sh                       # 32 clients, 3 rounds of 3s per figure, N=1,000,000
#   bash bench/run.sh -rounds 5 -d 5s       # steadier medians
#   bash bench/run.sh -profile /tmp/prof    # CPU profiles of Anteroom per figure
#   bash bench/run.sh -only wrk -rounds 5   # only figure 6 (the hot paths under wrk)
set -euo pipefail
cd "$(dirname "$0")/.."
for bin in redis-server redis-benchmark redis-cli; do
	command -v "$bin" >/dev/null || { echo "bench: $bin is required (apt-get install redis-server redis-tools)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench: wrk is required (apt-get install wrk)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/anteroom" ./cmd/anteroom
go build -o "$tmp/anteroom-bench" ./bench
"$tmp/anteroom-bench" -anteroom "$tmp/anteroom" -out bench/results.json "$@"
