#!/usr/bin/env bash
# AMLSim raw transactions -> partition -> train -> score -> rings -> report, straight from the raw CSVs.
#
#   examples/fraud/amlsim.sh [SAMPLE] [OUT] [detect-rings options...]
#
# SAMPLE: 20K_cycle200 (default), 20K_fanin200 or 20K_fanin200cycle200 under shared/data/amlsim.
# Labels: nodes.csv isFraud; feature: init_balance (fraudStep is not used: it is the label in disguise).
# Split: stratified 40/20/40 (seed 0), the tree baseline on the same split.
# Temporal sampling on the transaction time (--temporal uniform; pass --temporal recent to change it):
# no sampled transaction is later than the time an account is scored at (the end of the log).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
DATA="${GRAPHTRAIN_SHARED_DATA:-$HERE/../../../shared/data}"
SAMPLE="${1:-20K_cycle200}"
OUT="${2:-out/amlsim-$SAMPLE}"
shift $(( $# < 2 ? $# : 2 ))
GRAPHTRAIN="${GRAPHTRAIN:-graphtrain}"
$GRAPHTRAIN detect-rings \
    --edges "$DATA/amlsim/$SAMPLE/transactions.csv" --src sourceNodeId --dst targetNodeId --time time --amount value \
    --accounts "$DATA/amlsim/$SAMPLE/nodes.csv" --id nodeid --label isFraud --features init_balance \
    --temporal uniform --out "$OUT" "$@"
