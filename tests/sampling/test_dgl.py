"""MiniBatch.to_dgl(): blocks DGL layers consume. Runs where dgl is importable (e.g. the DGL peer venv).

Run with: /work/venvs/dgl/bin/python -m pytest -m dgl tests/sampling  (see benchmarks/README.md)
"""
import importlib.util

import numpy as np
import pytest

from graphtrain.sampling.minibatch import MiniBatch
from graphtrain.sampling.neighbor import NeighborSampler
from tests.sampling.graphs import random_graph

HAVE_DGL = importlib.util.find_spec("dgl") is not None
if HAVE_DGL:
    try:
        import dgl  # noqa: F401
    except Exception:  # installed but broken (e.g. built for another torch)
        HAVE_DGL = False

pytestmark = pytest.mark.dgl
needs_dgl = pytest.mark.skipif(not HAVE_DGL, reason="dgl not importable")


@needs_dgl
def test_blocks_layout_and_a_dgl_model_runs():
    import dgl
    import torch
    from dgl.nn import SAGEConv

    g = random_graph()
    b = NeighborSampler(g, [5, 3], backend="cpu", seed=1, temporal="uniform").sample(np.arange(8), np.full(8, 700))
    b.x = np.random.default_rng(0).random((b.num_nodes, 6)).astype(np.float32)
    b.y = np.arange(8)
    blocks = b.to_dgl()
    assert len(blocks) == 2
    n0, n1, n2 = np.cumsum(b.num_sampled_nodes)
    assert (blocks[0].num_src_nodes(), blocks[0].num_dst_nodes(), blocks[0].num_edges()) == (n2, n1, b.num_edges)
    assert (blocks[1].num_src_nodes(), blocks[1].num_dst_nodes(), blocks[1].num_edges()) == (n1, n0, b.num_sampled_edges[0])
    assert np.array_equal(blocks[0].srcdata[dgl.NID].numpy(), b.n_id)
    assert np.array_equal(blocks[1].dstdata[dgl.NID].numpy(), b.seeds)
    assert np.array_equal(blocks[0].edata[dgl.EID].numpy(), b.e_id)
    assert np.array_equal(blocks[1].dstdata["label"].numpy(), b.y)
    # edges of the first block, mapped to global IDs, are real edges of the graph
    s, d = blocks[0].edges()
    assert np.array_equal(g.src[b.e_id], b.n_id[s.numpy()]) and np.array_equal(g.dst()[b.e_id], b.n_id[d.numpy()])
    conv1, conv2 = SAGEConv(6, 8, "mean"), SAGEConv(8, 3, "mean")
    h = torch.relu(conv1(blocks[0], blocks[0].srcdata["feat"]))
    out = conv2(blocks[1], h)
    assert out.shape == (8, 3) and torch.isfinite(out).all()


def test_to_dgl_without_dgl_says_what_to_install():
    if HAVE_DGL:
        pytest.skip("dgl is importable here; the missing-dgl message cannot be shown")
    batch = MiniBatch(np.array([0, 1]), np.array([[1], [0]]), np.array([0]), [1, 1], [1])
    with pytest.raises(ImportError, match="dgl is not importable"):
        batch.to_dgl()
