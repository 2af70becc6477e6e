"""DGL side of bench_train.py, run by the DGL peer venv's python (DGL 2.1 needs torch <= 2.2.1).

Usage: python _dgl_train_worker.py DATA.npz BATCH_SIZE HIDDEN EPOCHS
Reads the graph (src/dst int64, num_nodes), node features (float32 [N, F]), labels (int64, -1
unknown), training node IDs and fanouts (graphtrain order: hop 1 first) from the .npz written by
bench_train.py, trains DGL's 2-layer GraphSAGE (``SAGEConv(..., "mean")``, ReLU, dropout 0.2) with
``dgl.dataloading.NeighborSampler`` + ``DataLoader`` (shuffled batches, in-process sampling) and
class-weighted cross-entropy with Adam, and prints one JSON line with the time of each epoch.
Threads come from OMP_NUM_THREADS (set by the caller).
"""
import json
import os
import sys
import time

import numpy as np


def main():
    path, batch_size, hidden, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    import dgl
    import torch
    import torch.nn.functional as F
    from dgl.nn import SAGEConv

    threads = int(os.environ.get("OMP_NUM_THREADS", "1"))
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = np.load(path)
    g = dgl.graph((torch.from_numpy(data["src"]), torch.from_numpy(data["dst"])), num_nodes=int(data["num_nodes"]))
    g.create_formats_()
    feats = torch.from_numpy(data["features"])
    labels = torch.from_numpy(data["labels"])
    train_ids = torch.from_numpy(data["train_ids"])
    fanouts = [int(f) for f in data["fanouts"]][::-1]  # DGL lists the input layer (outermost hop) first

    class SAGE(torch.nn.Module):
        def __init__(self, f_in, h, c):
            super().__init__()
            self.layers = torch.nn.ModuleList([SAGEConv(f_in, h, "mean"), SAGEConv(h, c, "mean")])

        def forward(self, blocks, x):
            for i, (layer, block) in enumerate(zip(self.layers, blocks)):
                x = layer(block, x)
                if i < len(self.layers) - 1:
                    x = F.dropout(F.relu(x), 0.2, self.training)
            return x

    model = SAGE(feats.shape[1], hidden, 2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    counts = torch.bincount(labels[train_ids], minlength=2).double()
    weight = (counts.sum() / (2 * counts.clamp(min=1))).float()
    sampler = dgl.dataloading.NeighborSampler(fanouts)
    loader = dgl.dataloading.DataLoader(g, train_ids, sampler, batch_size=batch_size, shuffle=True, drop_last=False, num_workers=0)
    out = {"dgl": dgl.__version__, "threads": threads, "epochs": []}
    for _ in range(epochs):
        model.train()
        seeds = batches = 0
        t0 = time.perf_counter()
        for input_nodes, output_nodes, blocks in loader:
            x = feats[input_nodes]
            y = labels[output_nodes]
            loss = F.cross_entropy(model(blocks, x), y, weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seeds += output_nodes.numel()
            batches += 1
        out["epochs"].append({"seconds": time.perf_counter() - t0, "seeds": seeds, "batches": batches})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
