"""Exchange channels: one collective per exchange once the capacities have adapted, the same rows as
the two-collective exchange whatever the sizes do (grow, shrink, zero), on 2 and 3 gloo workers."""
import numpy as np
import pytest

from graphtrain.comm.exchange import Exchange, MessageFill, _ChannelCaps
from tests.sampling.dist_helpers import run_group

# rows each worker sends each destination, per exchange: a steady size, a jump (overflow), zeros,
# a drop, then steady again
SIZES = [100, 100, 100, 900, 0, 3, 100, 100, 100, 100]


def _rows(rank, world, step, dtype, width):
    counts = np.array([(SIZES[step] + 7 * rank + 3 * j) if SIZES[step] else 0 for j in range(world)], dtype=np.int64)
    counts[(rank + step) % world] //= 2  # parts of one message differ in size
    n = int(counts.sum())
    base = (rank * 1_000_003 + step * 10_007 + np.arange(n * max(width, 1))).reshape((n, width) if width else (n,))
    return base.astype(dtype), counts


def _exchange_on_worker(rank, world, out_dir):
    import torch.distributed as dist

    ex = Exchange(rank, world)
    collectives = []
    orig = dist.all_to_all_single

    def counted(*a, **k):
        collectives.append(1)
        return orig(*a, **k)

    dist.all_to_all_single = counted
    out = {}
    for dtype, width in ((np.int64, 3), (np.float32, 5), (np.int64, 0)):
        channel = f"test {np.dtype(dtype).name} {width}"
        for step in range(len(SIZES)):
            rows, counts = _rows(rank, world, step, dtype, width)
            before = len(collectives)
            got, got_counts = ex.all_to_all(rows, counts, channel=channel)
            used = len(collectives) - before
            want, want_counts = ex.all_to_all(rows, counts)  # counts, then rows: two collectives
            assert len(collectives) - before - used == 2
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got, want) and np.array_equal(got_counts, want_counts)
            out[f"{channel} {step}"] = np.array(used)
    out["overflows"] = np.array(ex.stats.overflows)
    np.savez(f"{out_dir}/ex{rank}.npz", **out)


@pytest.mark.parametrize("world", [2, 3])
def test_channel_exchange_equals_the_counted_exchange(tmp_path, world):
    run_group(_exchange_on_worker, world, tmp_path, str(tmp_path))
    for rank in range(world):
        got = np.load(tmp_path / f"ex{rank}.npz")
        for channel in ("test int64 3", "test float32 5", "test int64 0"):
            used = [int(got[f"{channel} {s}"]) for s in range(len(SIZES))]
            # capacities start at 0 (the first exchange overflows), grow on the jump to 900 and
            # otherwise fit: one collective, two when any worker's part did not fit
            assert used == [2, 1, 1, 2, 1, 1, 1, 1, 1, 1], used
        assert int(got["overflows"]) == 6


def _message_pieces(src, dst, step):
    """What worker ``src`` sends ``dst`` at ``step``: an int64 header, odd-sized uint8 bytes and a
    float32 block written in place (sizes follow SIZES, so capacities overflow, shrink and fit)."""
    n = SIZES[step] + 5 * src + 2 * dst
    rng = np.random.default_rng([src, dst, step])
    head = np.array([src, dst, step], dtype=np.int64)
    raw = rng.integers(0, 256, size=n + 3, dtype=np.uint8)  # not a multiple of 8: padding follows
    block = rng.standard_normal((n, 3)).astype(np.float32)

    def write(buf):
        buf.view(np.float32).reshape(block.shape)[:] = block

    expected = np.concatenate([head.view(np.uint8), block.view(np.uint8).reshape(-1), raw])
    # the fill goes first after the header so that it starts 8-aligned
    return [head, MessageFill(block.nbytes, write), raw], expected


def _messages_on_worker(rank, world, out_dir):
    ex = Exchange(rank, world)
    checked = 0
    for step in range(len(SIZES)):
        messages, expected = [], {}
        for j in range(world):
            pieces, _ = _message_pieces(rank, j, step)
            messages.append(pieces)
            _, expected[j] = _message_pieces(j, rank, step)
        got = ex.exchange_messages(messages, channel="test messages")
        assert got[rank].size == 0
        for j in range(world):
            if j == rank:
                continue
            want = expected[j]
            assert got[j].size == want.size + (-want.size % 8)  # padded to whole words with zeros
            assert np.array_equal(got[j][: want.size], want) and not got[j][want.size :].any()
            assert got[j].view(np.int64)[:3].tolist() == [j, rank, step]  # 8-aligned: an int64 view works
            checked += 1
    np.savez(f"{out_dir}/msg{rank}.npz", checked=checked, overflows=ex.stats.overflows, calls=ex.stats.calls)


@pytest.mark.parametrize("world", [2, 3])
def test_messages_arrive_whole_padded_and_aligned(tmp_path, world):
    run_group(_messages_on_worker, world, tmp_path, str(tmp_path))
    for rank in range(world):
        got = np.load(tmp_path / f"msg{rank}.npz")
        assert int(got["checked"]) == len(SIZES) * (world - 1)
        assert int(got["calls"]) == len(SIZES)
        assert int(got["overflows"]) == 2  # the first exchange (capacities 0) and the jump to 900


def test_one_worker_sends_no_messages():
    assert Exchange(0, 1).exchange_messages([[np.arange(3)]], channel="x")[0].size == 0


def test_capacities_grow_past_a_count_that_did_not_fit_and_decay_towards_it():
    caps = _ChannelCaps(2, 8)
    caps.update(np.array([0, 1000]), np.array([1000, 0]))
    assert caps.send.tolist() == [16, 1516] and caps.recv.tolist() == [1516, 16]
    for _ in range(40):
        caps.update(np.array([0, 100]), np.array([100, 0]))
    assert caps.send[1] == 166  # 1.5x the steady count + 16 rows
    assert np.array_equal(caps.send, caps.recv[::-1])


def test_one_worker_has_no_channel_state():
    ex = Exchange(0, 1)
    rows = np.arange(6, dtype=np.int64).reshape(3, 2)
    got, counts = ex.all_to_all(rows, np.array([3]), channel="x")
    assert np.array_equal(got, rows) and counts.tolist() == [3] and ex.stats.calls == 0
