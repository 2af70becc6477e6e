#!/usr/bin/env bash
# Generated transactions with planted rings -> the whole pipeline (the README's main job).
#
#   examples/fraud/generated.sh [OUT] [ACCOUNTS] [demo options...]
set -euo pipefail
OUT="${1:-out/demo}"
ACCOUNTS="${2:-20000}"
shift $(( $# < 2 ? $# : 2 ))
GRAPHTRAIN="${GRAPHTRAIN:-graphtrain}"
$GRAPHTRAIN demo --out "$OUT" --accounts "$ACCOUNTS" "$@"
