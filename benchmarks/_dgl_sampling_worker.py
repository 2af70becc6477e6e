"""DGL side of bench_sampling.py, run by the DGL peer venv's python (DGL 2.1 needs torch <= 2.2.1).

Usage: python _dgl_sampling_worker.py GRAPH.npz NUM_BATCHES WARMUP
Reads src/dst (int64), num_nodes and seed batches from the .npz written by bench_sampling.py, runs
``dgl.dataloading.NeighborSampler(fanouts).sample_blocks`` on each batch and prints one JSON line.
Threads come from OMP_NUM_THREADS (set by the caller).
"""
import json
import os
import sys
import time

import numpy as np


def main():
    path, num_batches, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    import dgl
    import torch

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    data = np.load(path)
    g = dgl.graph((torch.from_numpy(data["src"]), torch.from_numpy(data["dst"])), num_nodes=int(data["num_nodes"]))
    g.create_formats_()  # build CSC/CSR up front, outside the timed loop
    batches = data["batches"]
    fanouts = [int(f) for f in data["fanouts"]]
    sampler = dgl.dataloading.NeighborSampler(fanouts)
    for b in batches[:warmup]:
        sampler.sample_blocks(g, torch.from_numpy(b))
    edges = 0
    seeds = 0
    t0 = time.perf_counter()
    for b in batches[:num_batches]:
        _, _, blocks = sampler.sample_blocks(g, torch.from_numpy(b))
        edges += sum(int(blk.num_edges()) for blk in blocks)
        seeds += b.size
    dt = time.perf_counter() - t0
    print(json.dumps({"dgl": dgl.__version__, "threads": threads, "batches": num_batches, "seconds": dt, "seeds": seeds, "edges": edges}))


if __name__ == "__main__":
    main()
