#!/usr/bin/env bash
# Amazon reviewers (U-P-U relation): prepare-data (Amazon.mat -> edge list + account table) -> detect-rings.
#
#   examples/fraud/amazon_upu.sh [OUT] [detect-rings options...]
#
# Undirected graph, 25 features, stratified 40/20/40 split (seed 0); the tree baseline on the same split.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${GRAPHTRAIN_SHARED_DATA:-$HERE/../../../shared/data}"
OUT="${1:-out/amazon-upu}"
shift $(( $# < 1 ? $# : 1 ))
GRAPHTRAIN="${GRAPHTRAIN:-graphtrain}"
$GRAPHTRAIN prepare-data amazon-upu "$DATA/amazon_upu/Amazon.mat" --out "$OUT/data" --force
$GRAPHTRAIN detect-rings --edges "$OUT/data/edges.parquet" --undirected \
    --accounts "$OUT/data/accounts.parquet" --id account_id --label label --out "$OUT/run" "$@"
