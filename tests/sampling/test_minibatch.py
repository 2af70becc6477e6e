import numpy as np
import pytest

from graphtrain.errors import ConfigError
from graphtrain.sampling.minibatch import MiniBatch


def _batch():
    # seeds 10, 11; hop 1 reaches 12 (into seed 0) and 13 (into seed 1) plus seed 11 into seed 0;
    # hop 2 reaches 14 into 12
    return MiniBatch(
        n_id=np.array([10, 11, 12, 13, 14]),
        edge_index=np.array([[2, 1, 3, 4], [0, 0, 1, 2]]),
        e_id=np.array([100, 101, 102, 103]),
        num_sampled_nodes=[2, 2, 1],
        num_sampled_edges=[3, 1],
        x=np.arange(10, dtype=np.float32).reshape(5, 2),
        y=np.array([0, 1]),
    )


def test_valid_batch_and_pyg():
    b = _batch().validate()
    assert b.batch_size == 2 and b.num_hops == 2 and b.seeds.tolist() == [10, 11]
    data = b.to_pyg()
    assert data.edge_index.shape == (2, 4) and data.batch_size == 2
    assert data.num_sampled_nodes == [2, 2, 1] and data.x.shape == (5, 2)
    # PyG layers consume it directly, including trim_to_layer's per-hop counts
    from torch_geometric.nn import SAGEConv
    from torch_geometric.utils import trim_to_layer

    conv = SAGEConv(2, 3)
    out = conv(data.x, data.edge_index)
    assert out.shape == (5, 3)
    x, ei, _ = trim_to_layer(1, data.num_sampled_nodes, data.num_sampled_edges, data.x, data.edge_index)
    assert x.shape[0] == 4 and ei.shape[1] == 3


def test_invalid_batches():
    b = _batch()
    b.edge_index = np.array([[2, 1, 3, 4], [0, 0, 1, 4]])  # hop-2 edge into a hop-2 node
    with pytest.raises(ConfigError, match="hop 2"):
        b.validate()
    b = _batch()
    b.num_sampled_nodes = [2, 2, 2]
    with pytest.raises(ConfigError, match="add up"):
        b.validate()
