"""Loading transaction and account tables: ID mapping, labels, splits, and clear errors on bad input."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphtrain.errors import ConfigError, InputError
from graphtrain.fraud.data.transaction_graph import load_accounts, load_transaction_graph
from graphtrain.fraud.synth.generate import generate
from graphtrain.fraud.synth.generate import load_generated
from graphtrain.fraud.synth.generator_config import GeneratorConfig
from graphtrain.split import stratified_split


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def tables(tmp_path):
    acc = _write(tmp_path / "acc.csv", "id,f1,f2,label,split\nA,1.0,2,1,train\nB,0.5,3,0,val\nC,,4,,test\nD,2.0,5,0,\n")
    tx = _write(tmp_path / "tx.csv", "payer,payee,amt,ts\nA,B,10.5,100\nB,C,3.0,200\nC,A,7.25,300\nD,A,1.0,400\n")
    return acc, tx


def test_load_maps_raw_ids_to_rows(tables):
    acc_path, tx_path = tables
    acc = load_accounts(acc_path, "id", label="label", split="split")
    assert acc.feature_names == ["f1", "f2"] and acc.labels.tolist() == [1, 0, -1, 0]
    assert acc.split.tolist() == [0, 1, 2, -1] and np.isnan(acc.features[2, 0])
    g = load_transaction_graph(tx_path, acc, src="payer", dst="payee", amount="amt", time="ts")
    assert g.src.tolist() == [0, 1, 2, 3] and g.dst.tolist() == [1, 2, 0, 0]
    assert g.amount.tolist() == [10.5, 3.0, 7.25, 1.0] and g.time.tolist() == [100, 200, 300, 400]


def test_load_generated_round_trip(tmp_path):
    generate(GeneratorConfig(num_accounts=2000, num_rings=5, num_lookalikes=5), tmp_path / "g")
    g = load_generated(tmp_path / "g")
    tx = pq.read_table(tmp_path / "g" / "transactions.parquet")
    assert g.num_accounts == 2000 and g.num_edges == tx.num_rows
    assert (g.accounts.ids[g.src] == np.asarray(tx.column("src").to_pylist(), dtype=object)).all()
    assert np.array_equal(g.time, tx.column("time").to_numpy())


def test_integer_account_ids_meet_text_edges(tmp_path):
    acc = load_accounts(_write(tmp_path / "a.csv", "id,label\n1,0\n2,1\n"), "id", label="label")
    pq.write_table(pa.table({"s": ["1", "2"], "d": ["2", "1"]}), tmp_path / "e.parquet")
    g = load_transaction_graph(tmp_path / "e.parquet", acc, src="s", dst="d")
    assert g.src.tolist() == [0, 1] and g.dst.tolist() == [1, 0]


def test_unknown_accounts_error_or_added(tables, tmp_path):
    acc = load_accounts(tables[0], "id", label="label")
    tx = _write(tmp_path / "t.csv", "payer,payee\nA,B\nB,Z\n")
    with pytest.raises(InputError, match=r"t.csv, row 2, column 'payee': account 'Z' is not in the account table"):
        load_transaction_graph(tx, acc, src="payer", dst="payee")
    g = load_transaction_graph(tx, acc, src="payer", dst="payee", unknown_accounts="add")
    assert g.num_accounts == 5 and g.accounts.ids[4] == "Z" and g.accounts.labels[4] == -1
    assert np.isnan(g.accounts.features[4]).all() and g.dst.tolist() == [1, 4]
    with pytest.raises(ConfigError):
        load_transaction_graph(tx, acc, src="payer", dst="payee", unknown_accounts="ignore")


@pytest.mark.parametrize("text, kwargs, message", [
    ("id,label\nA,0\nA,1\n", dict(label="label"), r"row 2, column 'id': account ID 'A' appears more than once"),
    ("id,label\nA,0\nB,2\n", dict(label="label"), r"row 2, column 'label': label 2 is not 0 or 1"),
    ("id,label\nA,0\nB,maybe\n", dict(label="label"), r"row 2, column 'label': label 'maybe'"),
    ("id,split\nA,train\nB,holdout\n", dict(split="split"), r"row 2, column 'split': split value 'holdout'"),
    ("id,f\nA,x\nB,y\n", dict(features=["f"]), r"column 'f': feature column must be numeric"),
    ("id,label\nA,0\n", dict(label="fraud"), r"no column 'fraud'"),
    ("id,label\n", dict(label="label"), r"no accounts"),
    ("id,label\nA,0\n,1\n", dict(label="label"), r"row 2, column 'id': empty account ID"),
])
def test_bad_account_tables(tmp_path, text, kwargs, message):
    with pytest.raises(InputError, match=message):
        load_accounts(_write(tmp_path / "acc.csv", text), "id", **kwargs)


@pytest.mark.parametrize("text, kwargs, message", [
    ("payer,payee\nA,B\nB,\n", {}, r"row 2, column 'payee': empty account ID"),
    ("payer,payee,amt\nA,B,1\nB,C,abc\n", dict(amount="amt"), r"column 'amt': amount column must be numeric"),
    ("payer,payee,amt\nA,B,1\nB,C,\n", dict(amount="amt"), r"row 2, column 'amt': empty or non-finite amount"),
    ("payer,payee,ts\nA,B,\nB,C,5\n", dict(time="ts"), r"row 1, column 'ts': empty time"),
    ("payer,dst\nA,B\n", {}, r"no column 'payee'"),
])
def test_bad_transaction_tables(tables, tmp_path, text, kwargs, message):
    acc = load_accounts(tables[0], "id")
    with pytest.raises(InputError, match=message):
        load_transaction_graph(_write(tmp_path / "t.csv", text), acc, src="payer", dst="payee", **kwargs)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_accounts(tmp_path / "nope.csv", "id")
    with pytest.raises(ConfigError, match="cannot tell the file format"):
        load_accounts(_write(tmp_path / "acc.xlsx", "x"), "id")
    with pytest.raises(InputError, match="cannot read|malformed"):
        load_accounts(_write(tmp_path / "broken.parquet", "not parquet"), "id")


def test_stratified_split():
    labels = np.array([0] * 900 + [1] * 100 + [-1] * 50)
    split = stratified_split(labels, (0.4, 0.2), seed=0)
    assert (split[-50:] == -1).all()
    for cls, n in ((0, 900), (1, 100)):
        s = split[labels == cls]
        assert np.bincount(s, minlength=3).tolist() == [round(0.4 * n), round(0.2 * n), n - round(0.4 * n) - round(0.2 * n)]
    assert np.array_equal(split, stratified_split(labels, (0.4, 0.2), seed=0))
    assert not np.array_equal(split, stratified_split(labels, (0.4, 0.2), seed=1))
    with pytest.raises(ConfigError):
        stratified_split(labels, (0.8, 0.3))


def test_undirected_list_must_hold_both_directions(tmp_path):
    """--undirected on a one-direction list (users -> products) is refused, naming an edge without its reverse."""
    acc = _write(tmp_path / "acc.csv", "id,label\nu1,1\nu2,0\nu3,0\np1,\np2,\n")
    one_way = _write(tmp_path / "one_way.csv", "src,dst\nu1,p1\nu2,p1\nu3,p2\n")
    accounts = load_accounts(acc, "id", label="label")
    with pytest.raises(InputError, match=r"'u1' -> 'p1' has no reverse 'p1' -> 'u1'.*3 of the 3 edges") as err:
        load_transaction_graph(one_way, accounts, directed=False)
    assert err.value.row == 1 and "one_way.csv" in str(err.value)
    assert load_transaction_graph(one_way, accounts).directed  # the same list, directed, is fine
    # one reverse missing among both directions: that edge is named
    partly = _write(tmp_path / "partly.csv", "src,dst\nu1,p1\np1,u1\nu2,p1\np1,u2\nu3,p2\nu3,u3\n")
    with pytest.raises(InputError, match=r"'u3' -> 'p2' has no reverse") as err:
        load_transaction_graph(partly, accounts, directed=False)
    assert err.value.row == 5
    both = _write(tmp_path / "both.csv", "src,dst\nu1,p1\np1,u1\nu2,p1\np1,u2\nu3,u3\n")  # a self-loop is its own reverse
    g = load_transaction_graph(both, accounts, directed=False)
    assert not g.directed and g.num_edges == 5


def test_reverse_check_on_a_sample_keeps_pairs_together():
    """Past ``sample`` edges only a hash sample is checked; an edge and its reverse are sampled together,
    so a list in both directions passes, and a one-direction list fails."""
    from graphtrain.fraud.data.transaction_graph import check_both_directions

    rng = np.random.default_rng(0)
    n, e = 5000, 200_000
    u, v = rng.integers(0, n, e), rng.integers(0, n, e)
    src, dst = np.concatenate([u, v]), np.concatenate([v, u])
    order = rng.permutation(2 * e)
    full = check_both_directions(src[order], dst[order], n)
    assert full.missing == -1 and full.checked == 2 * e and not full.sampled
    sample = check_both_directions(src[order], dst[order], n, sample=20_000)
    assert sample.missing == -1 and sample.sampled and 15_000 < sample.checked < 25_000
    one_way = check_both_directions(u, v, n, sample=20_000)
    assert one_way.sampled and one_way.missing >= 0 and one_way.without_reverse > 0.9 * one_way.checked
    assert (u == v[one_way.missing]).sum() == 0 or not ((u == v[one_way.missing]) & (v == u[one_way.missing])).any()
