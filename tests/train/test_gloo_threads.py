"""gloo's socket pollers at idle priority: every poller of both groups changed, nothing else, and
collectives still give the right answers afterwards."""
import multiprocessing as mp
import os

import pytest

from graphtrain.errors import ConfigError
from graphtrain.train.config import TrainConfig
from graphtrain.train.runtime import RuntimeConfig

pytestmark = pytest.mark.skipif(not hasattr(os, "SCHED_IDLE") or not os.path.isdir("/proc/self/task"),
                                reason="SCHED_IDLE and /proc/self/task need Linux")


def _worker(rank: int, init_file: str, out) -> None:
    import torch
    import torch.distributed as dist

    from graphtrain.train.gloo_threads import gloo_poller_threads, idle_gloo_pollers

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    group = dist.new_group(backend="gloo")
    before = {tid: os.sched_getscheduler(tid) for tid in gloo_poller_threads()}
    changed = idle_gloo_pollers()
    policies = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            policies[int(tid)] = os.sched_getscheduler(int(tid))
        except ProcessLookupError:
            pass
    sums = []
    for g in (None, group):  # both groups still reduce correctly, many times over
        for k in range(50):
            x = torch.full((1000,), float(rank + k))
            dist.all_reduce(x, group=g)
            sums.append(float(x[0]) == float(2 * k + 1) and bool((x == x[0]).all()))
    dist.destroy_process_group()
    out.put({"rank": rank, "before": before, "changed": changed, "policies": policies, "sums_ok": all(sums)})


def test_both_groups_pollers_run_idle_and_collectives_still_work(tmp_path):
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, str(tmp_path / "init"), out)) for r in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    for r in results:
        assert len(r["before"]) == 2  # one poller per gloo group: the default group and the new one
        assert set(r["before"].values()) == {os.SCHED_OTHER}
        assert sorted(r["changed"]) == sorted(r["before"])
        idle = {tid for tid, pol in r["policies"].items() if pol == os.SCHED_IDLE}
        assert idle == set(r["changed"])  # the pollers, and no other thread of the process
        assert r["sums_ok"]


def _cfg(gloo_poller=None, **kw):
    return TrainConfig(runtime=RuntimeConfig() if gloo_poller is None else RuntimeConfig(gloo_poller=gloo_poller), **kw)


def test_gloo_poller_setting_resolves_and_is_checked():
    # normal by default (issue 18: a third-party library's thread scheduling is changed only on request)
    assert not _cfg().idle_gloo_pollers and not _cfg(use_gpu=True).idle_gloo_pollers
    assert _cfg("auto").idle_gloo_pollers  # auto on CPU: idle
    assert not _cfg("auto", use_gpu=True).idle_gloo_pollers  # auto with GPUs: not measured there, left alone
    assert _cfg("idle", use_gpu=True).idle_gloo_pollers
    assert not _cfg("normal").idle_gloo_pollers
    with pytest.raises(ConfigError, match="gloo_poller must be one of"):
        _cfg("fast").validate()
