"""The docs quote the current results, and name where each figure comes from.

Each check parses the figure out of the doc and out of its source, so a doc that drifts from the
results (or a result re-measured without its doc) fails here.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FRAUD_DOC = ROOT / "docs" / "fraud.md"
FRAUD_RESULTS = ROOT / "examples" / "fraud" / "README.md"
FIGURE = re.compile(r"(?<![\d.])\d\.\d{2,}(?![\d.])")  # 0.52, 0.9044: measured figures (not 0.5, 1.0)
# paragraphs of docs/fraud.md whose figures are not results of examples/fraud/README.md: the
# generator's design (its R-MAT defaults and feature strength) and the ring stage on ground-truth
# scores (checked against tests/fraud/test_rings.py below)
OTHER_SOURCES = ("**Background.**", "**Keeping the task honest.**", "With ground-truth scores")


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _one(pattern: str, text: str, what: str) -> tuple:
    found = re.findall(pattern, text, re.S | re.M)
    assert len(found) == 1, f"{what}: expected one match of {pattern!r}, found {found}"
    return found[0] if isinstance(found[0], tuple) else (found[0],)


def _row(table_text: str, label: str) -> list:
    """Cells of the Markdown table row whose first cell starts with ``label``."""
    rows = [line for line in table_text.splitlines() if line.startswith(f"| {label}")]
    assert len(rows) == 1, f"expected one table row starting with {label!r}, found {len(rows)}"
    return [c.strip() for c in rows[0].strip("|").split("|")]


def test_fraud_doc_figures_are_in_the_results_it_cites():
    doc, results = _text(FRAUD_DOC), _text(FRAUD_RESULTS)
    paragraphs = [p for p in re.split(r"\n\s*\n", doc) if not p.lstrip().startswith(OTHER_SOURCES)]
    quoted = {f for p in paragraphs for f in FIGURE.findall(p)}
    assert quoted, "docs/fraud.md quotes no figures: the test would check nothing"
    assert "examples/fraud/README.md" in doc
    missing = sorted(f for f in quoted if not re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", results))
    assert not missing, f"docs/fraud.md quotes {missing}, which examples/fraud/README.md does not hold"


def test_fraud_doc_quotes_the_current_table_rows():
    doc, results = _text(FRAUD_DOC), _text(FRAUD_RESULTS)
    for label, accounts in (("generated 20,000 accounts", "20,000"), ("generated 100,000 accounts", "100,000")):
        precision, recall = _row(results, label)[-1].split(" / ")
        assert _one(rf"precision (\d\.\d+) and recall (\d\.\d+)\s+on {accounts}", doc, "GNN rings") == (precision, recall)
    cells = _row(results, "AMLSim 20K_cycle200 (")
    auc, ap, f1 = cells[3].split(" / ")
    got = _one(r"test\s+AUC (\d\.\d+), AP (\d\.\d+), F1-macro (\d\.\d+), (\d+) rings", doc, "AMLSim temporal uniform")
    assert got == (auc, ap, f1, cells[7])  # data, accounts, transactions, GNN, tree, blend, epochs, rings


def test_ring_recovery_claims_equal_the_test_thresholds():
    doc = _text(FRAUD_DOC)
    test = _text(ROOT / "tests" / "fraud" / "test_rings.py")
    typology_lo, _ = _one(r"right for (\d+)-(\d+)% of the matched rings", doc, "typology claim")
    (got_typology,) = _one(r"np\.mean\(right\) >= (\d\.\d+)", test, "typology test")
    assert round(float(got_typology) * 100) == int(typology_lo), "typology: the test's threshold is not the doc's lower bound"
    precision, recall_lo, _ = _one(r"ring precision is (\d\.\d+)-1\.0 and ring\s+recall (\d\.\d+)-(\d\.\d+)", doc, "claim")
    got_recall, got_precision = _one(r"match\.recall >= (\d\.\d+) and match\.precision >= (\d\.\d+)", test, "test")
    assert (float(got_precision), float(got_recall)) == (float(precision), float(recall_lo))


def test_training_doc_gc_object_counts_are_the_results():
    doc = _text(ROOT / "docs" / "training.md")
    results = _text(ROOT / "benchmarks" / "RESULTS.md")
    (paragraph,) = [p for p in re.split(r"\n\s*\n", doc) if "gc.freeze" in p]
    counts = re.findall(r"\d{3},\d{3}", paragraph)
    assert counts, "the gc.freeze paragraph quotes no object count"
    for count in counts:
        assert re.search(rf"(?<![\d,]){count}(?![\d])", results), f"{count} objects is not in benchmarks/RESULTS.md"
    assert "benchmarks/RESULTS.md" in paragraph, "the gc.freeze paragraph does not name its source"


def test_readme_torch_index_is_the_makefiles():
    readme, makefile = _text(ROOT / "README.md"), _text(ROOT / "Makefile")
    (default,) = _one(r"^TORCH_CPU_INDEX := (\S+)$", makefile + "\n", "Makefile")
    assert "TORCH_INDEX ?= $(shell" in makefile and "$(TORCH_CPU_INDEX)" in makefile  # the CPU index, where it resolves
    assert "--extra-index-url $(TORCH_INDEX)" in makefile
    assert _one(r"`TORCH_INDEX`, default\s+`([^`]+)`", readme, "README") == (default,)
    assert f"pip install torch==2.13.0 --index-url {default}" in readme
