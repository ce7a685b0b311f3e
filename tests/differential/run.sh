#!/usr/bin/env bash
# Differential test of the filter-expression engine against mozjexl 1.1.6 — what CI runs.
#
#   tests/differential/run.sh [SEED] [COUNT]
#
# Installs the pinned oracle (npm ci), generates COUNT cases (default 10000) with SEED
# (default 2; the committed corpus uses seed 1), and runs the Rust comparison on them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
seed="${1:-2}"
count="${2:-10000}"

if ! [[ "$seed" =~ ^[0-9]+$ && "$count" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 [SEED] [COUNT]  (non-negative integers)" >&2
  exit 2
fi

out_dir="$root/target/jexl-differential"
cases="$out_dir/cases-seed$seed-n$count.jsonl"
mkdir -p "$out_dir"

echo "==> npm ci (mozjexl 1.1.6)" >&2
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

echo "==> generating $count cases with seed $seed -> $cases" >&2
node "$here/generate.mjs" --count "$count" --seed "$seed" --out "$cases"

lines="$(wc -l < "$cases")"
if [ "$lines" -ne "$count" ]; then
  echo "expected $count cases in $cases, found $lines" >&2
  exit 1
fi

echo "==> comparing with the Rust engine" >&2
cd "$root"
FLIGHTDECK_JEXL_ORACLE_CASES="$cases" cargo test -p flightdeck-core --test jexl_differential -- --nocapture
