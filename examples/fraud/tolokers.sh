#!/usr/bin/env bash
# Tolokers: prepare-data (tolokers.npz, fixed split 0: 50/25/25) -> detect-rings on that split.
#
#   examples/fraud/tolokers.sh [OUT] [detect-rings options...]
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${GRAPHTRAIN_SHARED_DATA:-$HERE/../../../shared/data}"
OUT="${1:-out/tolokers}"
shift $(( $# < 1 ? $# : 1 ))
GRAPHTRAIN="${GRAPHTRAIN:-graphtrain}"
$GRAPHTRAIN prepare-data tolokers "$DATA/tolokers/tolokers.npz" --out "$OUT/data" --force
$GRAPHTRAIN detect-rings --edges "$OUT/data/edges.parquet" --undirected \
    --accounts "$OUT/data/accounts.parquet" --id account_id --label label --split split --out "$OUT/run" "$@"
