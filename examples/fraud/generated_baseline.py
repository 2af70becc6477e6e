"""Generated transactions -> tree baseline -> rings -> evaluation -> report, in one command.

    python examples/fraud/generated_baseline.py --out OUT [--accounts 20000] [--seed 0] [--force]

The ring stage on the **tree baseline's** scores alone, with no graphtrain model (the whole pipeline
with the trained GNN is ``graphtrain demo`` / ``examples/fraud/generated.sh``): the reference the
model's rings are compared with. The output says so
(``scores_from_baseline: true``, a banner on the report). Writes ``OUT/data`` (the generated
transactions and ground truth) and ``OUT/run`` (scores, rings, report), prints the report path and
one JSON line of metrics.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from graphtrain.errors import GraphtrainError  # noqa: E402
from graphtrain.fraud.pipeline.pipeline import PipelineConfig, generate_and_run  # noqa: E402
from graphtrain.fraud.synth.generator_config import GeneratorConfig  # noqa: E402
from graphtrain.log import setup_logging  # noqa: E402

KEYS = ("score_source", "scores_from_baseline", "auc", "ap", "f1_macro", "recall_at_k", "baseline_auc", "baseline_ap",
        "rings", "true_rings", "ring_precision", "ring_recall", "ring_recall_by_typology")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory (data/ and run/ are created in it)")
    parser.add_argument("--accounts", type=int, default=20000, help="number of accounts (default: 20000)")
    parser.add_argument("--seed", type=int, default=0, help="generator, split and baseline seed (default: 0)")
    parser.add_argument("--force", action="store_true", help="replace earlier output of this script")
    args = parser.parse_args()
    setup_logging()
    try:
        summary = generate_and_run(args.out, GeneratorConfig(num_accounts=args.accounts, seed=args.seed),
                                   PipelineConfig(seed=args.seed, title="graphtrain fraud rings (generated data, tree-baseline scores)"),
                                   force=args.force)
    except GraphtrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"report: {summary['report']}")
    print(json.dumps({k: summary.get(k) for k in KEYS}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
