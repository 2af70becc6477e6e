"""Model comparison of examples/fraud/README.md, "Edge-aware models": Train models on a pipeline-prepared dataset (its split and account features) with the pipeline's
schedule (ModelOptions defaults) and report test AUC / AP of the layer-wise scores.
usage: python benchmarks/compare_models_on_pipeline_dataset.py DATASET_DIR OUT_JSON TEMPORAL(none|uniform) MODEL:SEED ..."""
import json, sys, time, shutil
from dataclasses import replace
from pathlib import Path
import numpy as np
from graphtrain import metrics
from graphtrain.fraud.pipeline.detect import ModelOptions, train_and_score
from graphtrain.partition.format import open_dataset

ds_dir, out_json, temporal = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ds = open_dataset(ds_dir)
labels = np.concatenate([np.asarray(ds.partition(p).labels) for p in range(ds.num_parts)])
split = np.concatenate([np.asarray(ds.partition(p).split) for p in range(ds.num_parts)])
test = (split == 2) & (labels >= 0)
results = json.loads(out_json.read_text()) if out_json.exists() else {}
for job in sys.argv[4:]:
    model, seed = job.split(":")
    if job in results:
        continue
    opts = replace(ModelOptions(), model=model, seed=int(seed), num_cpus=2,
                   temporal=None if temporal == "none" else temporal).validate()
    work = out_json.parent / f"work-{out_json.stem}-{model}-{seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    t0 = time.perf_counter()
    scores, fit = train_and_score(ds_dir, work / "ck", work / "scores.parquet", labels.size, opts)
    results[job] = {"auc": metrics.roc_auc(labels[test], scores[test]),
                    "ap": metrics.average_precision(labels[test], scores[test]),
                    "val": fit.val, "epochs": fit.epochs_run, "seconds": round(time.perf_counter() - t0, 1)}
    print(job, results[job], flush=True)
    out_json.write_text(json.dumps(results, indent=1))
    shutil.rmtree(work, ignore_errors=True)
