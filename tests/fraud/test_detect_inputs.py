"""detect-rings checks every input before the first long stage (issue 19 items 3 and 4), and runs end to
end on a bipartite user -> product graph, directed and undirected (item 2).

The fast tests call the CLI in-process with training replaced by a function that fails the test: an
input error must come before it (the files' headers before partitioning, which reads the rows as it
streams them; the rings file, labels and split after partitioning, before training).
"""
import json
import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import graphtrain.fraud.pipeline.detect as detect
from graphtrain.cli import main
from graphtrain.errors import InputError
from graphtrain.fraud.data.transaction_graph import load_accounts, load_transaction_graph
from graphtrain.fraud.evaluation.evaluate import load_true_rings
from graphtrain.fraud.pipeline.pipeline import PipelineConfig, choose_split
from graphtrain.split import TEST, TRAIN, VAL


def _bipartite_files(tmp, users=300, products=60, seed=0, both_directions=False, split=("train", "val", "test")):
    """Users buying products: users.parquet (user_id, label, split, two features; products unlabelled),
    purchases.parquet (buyer -> item, amount, ts; with ``both_directions`` also item -> buyer), and
    rings.csv (ring_id, user_id): groups of fraudulent users who buy the same few products."""
    rng = np.random.default_rng(seed)
    uid = np.array([f"u{i}" for i in range(users)] + [f"p{j}" for j in range(products)], dtype=object)
    fraud = np.zeros(users, dtype=bool)
    fraud[rng.choice(users, users // 5, replace=False)] = True
    rings = np.flatnonzero(fraud)[: 3 * (users // 15)].reshape(-1, 3)
    buyer, item = [], []
    for u in range(users):
        pool = np.arange(products // 6) if fraud[u] else np.arange(products)  # fraudsters share a few products
        for p in rng.choice(pool, rng.integers(2, 8), replace=False):
            buyer.append(u)
            item.append(users + p)
    buyer, item = np.array(buyer), np.array(item)
    labels = np.concatenate([fraud.astype(float), np.full(products, np.nan)])
    names = np.array(split, dtype=object)[np.arange(users) % len(split)]
    accounts = pa.table({
        "user_id": uid,
        "label": pa.array(labels, mask=np.isnan(labels)),
        "split": pa.array(np.concatenate([names, np.full(products, None)]).tolist(), type=pa.string()),
        "age": rng.normal(size=users + products), "score": rng.normal(size=users + products) + np.concatenate([fraud, np.zeros(products)]),
    })
    src, dst = (np.concatenate([buyer, item]), np.concatenate([item, buyer])) if both_directions else (buyer, item)
    edges = pa.table({"buyer": uid[src], "item": uid[dst], "amount": rng.lognormal(3, 1, src.size),
                      "ts": rng.integers(0, 30 * 86400, src.size)})
    pq.write_table(accounts, tmp / "users.parquet")
    pq.write_table(edges, tmp / "purchases.parquet")
    ring_rows = [(r, uid[m]) for r, members in enumerate(rings) for m in members]
    (tmp / "rings.csv").write_text("ring_id,user_id\n" + "".join(f"{r},{m}\n" for r, m in ring_rows))
    return tmp / "users.parquet", tmp / "purchases.parquet", tmp / "rings.csv"


def _args(users, purchases, out, *extra):
    return ["detect-rings", "--edges", str(purchases), "--src", "buyer", "--dst", "item", "--amount", "amount",
            "--time", "ts", "--accounts", str(users), "--id", "user_id", "--label", "label", "--split", "split",
            "--features", "age,score", "--out", str(out), *extra]


@pytest.fixture
def no_training(monkeypatch):
    """Training fails the test: whatever is checked must be checked before it."""
    def long_stage(*a, **k):
        raise AssertionError("reached training before the inputs were checked")

    monkeypatch.setattr(detect, "train_and_score", long_stage)


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_rings_file_with_the_id_column_name_is_accepted(tmp_path):
    users, purchases, rings = _bipartite_files(tmp_path)
    accounts = load_accounts(users, "user_id", label="label", split="split")
    truth = load_true_rings(rings, accounts, id_column=["user_id", "account_id"])
    assert len(truth.members) == 20 and all(m.size == 3 for m in truth.members)
    with pytest.raises(InputError, match=r"no account ID column 'account_id' .*'user_id'.*--rings-id"):
        load_true_rings(rings, accounts)


def test_bad_rings_file_fails_before_training(tmp_path, capsys, no_training):
    users, purchases, rings = _bipartite_files(tmp_path)
    out = tmp_path / "out"
    # the ring file names users by user_id, as --id does: accepted; training is then reached (and stopped here)
    with pytest.raises(AssertionError, match="reached training"):
        main(_args(users, purchases, out, "--rings", str(rings)))
    # --rings-id naming a column the file lacks
    code, err = _run(_args(users, purchases, out, "--rings", str(rings), "--rings-id", "acct"), capsys)
    assert code == 2 and "rings.csv" in err and "'acct'" in err and "Traceback" not in err
    # an account the account table lacks: file, row, column
    bad = tmp_path / "bad_rings.csv"
    bad.write_text(rings.read_text() + "99,u999\n")
    code, err = _run(_args(users, purchases, out, "--rings", str(bad)), capsys)
    rows = len(rings.read_text().splitlines())
    assert code == 2 and f"bad_rings.csv, row {rows}, column 'user_id': account 'u999' is not in the account table" in err
    assert not out.exists()


def test_every_file_header_is_checked_before_any_file_is_read_whole(tmp_path, capsys, monkeypatch, no_training):
    users, purchases, rings = _bipartite_files(tmp_path)

    def read_whole(*a, **k):
        raise AssertionError("read a whole file before checking the headers")

    monkeypatch.setattr(detect, "partition_inputs", read_whole)
    for extra, where in ((["--time", "when"], "purchases.parquet, column 'when'"),
                         (["--features", "age,income"], "users.parquet, column 'income'"),
                         (["--rings", str(rings), "--rings-id", "account"], "rings.csv, column 'account'")):
        code, err = _run(_args(users, purchases, tmp_path / "out", *extra), capsys)
        assert code == 2 and where in err, (extra, err)
    assert not (tmp_path / "out").exists()


def test_one_direction_list_with_undirected_fails_before_training(tmp_path, capsys, no_training):
    users, purchases, _ = _bipartite_files(tmp_path)
    code, err = _run(_args(users, purchases, tmp_path / "out", "--undirected"), capsys)
    assert code == 2 and "purchases.parquet, row 1" in err and "has no reverse" in err, err
    users, purchases, _ = _bipartite_files(tmp_path, both_directions=True)
    with pytest.raises(AssertionError, match="reached training"):  # both directions: accepted
        main(_args(users, purchases, tmp_path / "out", "--undirected"))


def test_split_without_val_carves_a_stratified_validation_set_from_train(tmp_path):
    from graphtrain.split import carve_validation

    users, purchases, _ = _bipartite_files(tmp_path, split=("train", "test"))
    accounts = load_accounts(users, "user_id", label="label", split="split")
    graph = load_transaction_graph(purchases, accounts, src="buyer", dst="item")
    given = accounts.split.copy()
    assert not (given == VAL).any()
    split, note = choose_split(accounts.labels, accounts.split, PipelineConfig(seed=5))
    labels = accounts.labels
    assert "without validation accounts" in note and "carved out of train" in note
    assert ((given == TEST) == (split == TEST)).all() and ((split == VAL) <= (given == TRAIN)).all()  # only train moves
    for cls in (0, 1):
        train_before = ((given == TRAIN) & (labels == cls)).sum()
        val = ((split == VAL) & (labels == cls)).sum()
        assert val == round(train_before / 3), (cls, val, train_before)  # val_fraction / (train + val) = 0.2 / 0.6
    detect._check_labels(labels, split)  # train and val both have both classes now
    again = carve_validation(given, labels, 1 / 3, seed=5)
    assert (again == split).all() and not (carve_validation(given, labels, 1 / 3, seed=6) == split).all()
    # a given val split is kept as it is
    assert choose_split(labels, np.where(given == TEST, VAL, given).astype(np.int8), PipelineConfig())[1] == "given (split column)"


def test_splits_the_later_stages_need_are_checked_before_training(tmp_path, capsys, no_training):
    users, purchases, _ = _bipartite_files(tmp_path, split=("train", "val"))  # no test accounts
    code, err = _run(_args(users, purchases, tmp_path / "out"), capsys)
    assert code == 2 and "test split has no labelled accounts" in err


def _timed_main(argv, caplog):
    logger = logging.getLogger("graphtrain")
    logger.addHandler(caplog.handler)
    try:
        t0 = time.perf_counter()
        code = main(argv)
        return code, time.perf_counter() - t0
    finally:
        logger.removeHandler(caplog.handler)


@pytest.mark.ray
@pytest.mark.slow
@pytest.mark.parametrize("undirected", [False, True], ids=["directed", "undirected"])
def test_bipartite_graph_runs_end_to_end(tmp_path, undirected, caplog, capsys):
    """A user -> product graph (labels on users), with a split that has no val and rings named by the --id
    column: directed, users receive no edges and the baseline drops those columns; undirected (both
    directions written), every user has neighbours and nothing is dropped."""
    users, purchases, rings = _bipartite_files(tmp_path, both_directions=undirected, split=("train", "test"))
    out = tmp_path / "out"
    argv = _args(users, purchases, out, "--rings", str(rings), "--epochs", "2", "--min-steps", "2", "--patience", "2", "--hidden", "8",
                 "--fanouts", "4,4", "--num-parts", "1", "--num-cpus", "2", *(["--undirected"] if undirected else []))
    code, seconds = _timed_main(argv, caplog)
    printed = capsys.readouterr()
    assert code == 0, printed.err[-3000:]
    final = json.loads(printed.out.strip().splitlines()[-1])
    summary = json.loads((out / "summary.json").read_text())
    assert {p.name for p in out.iterdir()} >= {"summary.json", "scores.parquet", "rings.csv", "report"}
    assert (out / "report" / "index.html").is_file() and pq.read_table(out / "scores.parquet").num_rows == 360
    assert final["true_rings"] == 20 and 0 <= final["auc"] <= 1 and 0 <= final["baseline_auc"] <= 1
    assert "carved out of train" in summary["split"]
    dropped = summary["baseline"]["dropped_features"]
    logged = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    if undirected:
        assert dropped == [] and not logged
    else:
        assert {"in_count", "in_amount_mean", "in_mean_own_age", "in2_mean_out_mean_own_age"} <= set(dropped), dropped
        assert not any(n.startswith("out_") and n.split("_")[1] in ("count", "distinct") for n in dropped)
        assert len(logged) == 1 and all(n in logged[0] for n in dropped), logged
    print(f"bipartite {'undirected' if undirected else 'directed'}: {seconds:.1f} s (partition "
          f"{summary['model']['partition_seconds']} s, train and score {summary['model']['train_and_score_seconds']} s)")


def test_a_disk_too_small_for_the_run_is_refused_before_partitioning(tmp_path, capsys, monkeypatch, no_training):
    """detect-rings estimates the whole run's disk (graphtrain plan) and refuses it, before any work, when the free
    disk beside --out is short; --skip-disk-check overrides."""
    from collections import namedtuple

    import graphtrain.plan as plan

    users, purchases, _ = _bipartite_files(tmp_path)

    def read_whole(*a, **k):
        raise AssertionError("partitioned although the disk is too small")

    monkeypatch.setattr(detect, "partition_inputs", read_whole)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(plan.shutil, "disk_usage", lambda path: usage(10 << 20, 9 << 20, 1 << 20))  # 1 MiB free
    code, err = _run(_args(users, purchases, tmp_path / "out"), capsys)
    assert code == 2 and "graphtrain detect-rings" in err and "free" in err and "--skip-disk-check" in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    with pytest.raises(AssertionError, match="partitioned although"):
        main(_args(users, purchases, tmp_path / "out", "--skip-disk-check"))


def test_a_memory_limit_too_small_for_the_accounts_is_refused_before_partitioning(tmp_path, capsys, monkeypatch,
                                                                                  no_training):
    """--memory-limit is the whole run's: one below the pipeline's fixed cost and per-account arrays for the account
    table's rows is refused before any work, naming the least that would do."""
    from graphtrain.fraud.pipeline import memory_budget

    users, purchases, _ = _bipartite_files(tmp_path)

    def read_whole(*a, **k):
        raise AssertionError("partitioned although the memory limit is too small")

    monkeypatch.setattr(detect, "partition_inputs", read_whole)
    need = memory_budget.pipeline_bytes(0) + memory_budget.MIN_RING_TRANSACTIONS * memory_budget.RING_BYTES_PER_TRANSACTION
    code, err = _run(_args(users, purchases, tmp_path / "out", "--memory-limit", "1G"), capsys)
    assert code == 2 and "--memory-limit 1.0 GiB is below" in err and "Give at least --memory-limit" in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()
    assert need > 1 << 30  # so the refusal is the limit's, not a side effect
    with pytest.raises(AssertionError, match="partitioned although"):  # a limit that fits gets to partitioning
        main(_args(users, purchases, tmp_path / "out", "--memory-limit", "8G"))
