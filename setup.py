"""graphtrain: distributed graph-learning training engine (range-partitioned graphs, Numba samplers, Ray)."""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = {}
exec((HERE / "graphtrain" / "_version.py").read_text(), VERSION)

# Optional features (graphtrain/optional.py checks at each entry point and says which extra to install).
EXTRAS = {
    "metis": ["pymetis>=2023.1"],  # partition --method metis
    # detect-rings, demo, prepare-data: tree baseline, rings, evaluation
    "fraud": ["scipy>=1.10", "pandas>=1.5"],
    "report": ["matplotlib>=3.7"],  # the fraud pipeline's HTML report figures
    # graphtrain tune: Ray Tune's OptunaSearch (TPE) needs optuna; Ray Tune itself needs pydantic
    "tune": ["optuna>=3.0", "pydantic>=2"],
    "dgl": ["dgl"],  # MiniBatch.to_dgl(); DGL 2.1 needs torch <= 2.2.1, so not part of "all"
}
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() if name != "dgl" for req in reqs})
# networkx: the reference the ring steps (bridges, Louvain) are tested against
EXTRAS["test"] = ["pytest>=7", "pytest-xdist>=3.5", "hypothesis>=6", "networkx>=2.8"]

setup(
    name="graphtrain",
    version=VERSION["__version__"],
    description="Distributed GNN training for fraud and risk graphs: streaming range partitioning, "
    "Numba CPU/CUDA neighbour sampling, Ray + torch.distributed training.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["graphtrain", "graphtrain.*"]),
    # the core: partition, sample, train, predict; the Makefile (README's commands) installs '.[all,test]'
    install_requires=[
        # torch is pinned by the install command in README/.ci (the CPU build on disk);
        # a range here keeps pip from replacing an installed torch.
        "torch>=2.2",
        "torch-geometric>=2.5",
        "ray>=2.9",
        "numpy>=1.24",
        "pyarrow>=14",
        "numba>=0.59",
        "scikit-learn>=1.3",  # metrics of training and evaluation (graphtrain/metrics.py)
        "tqdm>=4.60",
        "psutil>=5.9",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["graphtrain=graphtrain.cli:main"]},
)
