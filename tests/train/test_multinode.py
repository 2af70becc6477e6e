"""Two Ray nodes on one machine (ray.cluster_utils.Cluster): workers land on different nodes and train."""
import pytest

from graphtrain.train import Trainer

pytestmark = pytest.mark.ray


def test_training_across_two_ray_nodes(labelled_dataset, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()  # the session's local Ray; later tests start it again
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        t = Trainer(labelled_dataset, "sage", [5, 5], 64, 2, num_workers=2, address=cluster.address,
                    checkpoint_dir=tmp_path, hidden=16, lr=0.01, progress=False)
        r = t.fit()
        assert len(ray.nodes()) == 2
        assert len(set(t.worker_nodes.values())) == 2  # one worker per node (SPREAD placement)
        assert r.val["auc"] > 0.6 and r.train.bytes_sent > 0
    finally:
        ray.shutdown()
        cluster.shutdown()
