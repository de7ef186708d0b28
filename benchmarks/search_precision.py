"""Precision@k of melos search on the synthetic traditions: same tradition, same lead instrument.

    python benchmarks/search_precision.py --clips 60 --k 10
    python benchmarks/search_precision.py --pretrain-steps 300   # a quickly trained encoder
    python benchmarks/search_precision.py --model quickstart/runs/multi/final

Renders `--clips` clips per tradition (the quickstart's generator, seed 0, 5 s each), embeds them
with `melos embed` (every layer, one 5 s window per clip), builds a track-level index per layer
with the corpus manifest's culture and lead instrument as columns, and queries the index with
every clip's own embedding file; the clip itself is left out of its results. Precision@k is the
fraction of the k results sharing the query's label, averaged over queries; chance is the
fraction of the other clips that share it. By default the encoder is `mert-tiny` with random
weights (torch seed 0, saved so the run is repeatable): what an untrained network's features
already separate. `--pretrain-steps N` first pre-trains mert-tiny for N steps with the
quickstart's objective (recipes/quickstart.yaml `pretrain`) on another corpus of the four
traditions (seed 1, 100 clips each), so no queried clip is training audio.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from melos.data.synth import write_corpus
from melos.embedding import Embeddings, embed
from melos.search import VectorIndex, query_vector


def lead_instrument(meta: dict) -> str:
    return next(p["instrument"] for p in meta["parts"] if p["role"] == "melody")


def pretrain(out: Path, steps: int) -> str:
    """mert-tiny pre-trained as the quickstart does, on a corpus of every tradition (seed 1)."""
    import dataclasses

    from melos.quickstart.pipeline import load_config
    from melos.training.run import train

    data = write_corpus(out / "train-corpus", 100, seconds=5.0, seed=1, split={"train": 1.0}, progress=False)
    recipe = load_config("recipes/quickstart.yaml").pretrain
    recipe = dataclasses.replace(recipe, teacher=dataclasses.replace(recipe.teacher, statistics=str(data)),
                                 stages=[dataclasses.replace(recipe.stages[0], steps=steps)])
    return str(train(recipe, data, out / f"pretrain-{steps}", progress=False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=60, help="clips per tradition")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--model", help="encoder to embed with (default: mert-tiny, random weights, seed 0)")
    p.add_argument("--pretrain-steps", type=int, default=0, help="pre-train mert-tiny this many steps first")
    p.add_argument("--out", default="/tmp/melos-search-precision")
    args = p.parse_args()
    out = Path(args.out)
    start = time.perf_counter()
    manifest = write_corpus(out / "corpus", args.clips, seconds=5.0, seed=0, progress=False)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    for row in rows:
        row["instrument"] = lead_instrument(row["meta"])
    search_manifest = out / "corpus" / "search.jsonl"
    search_manifest.write_text("".join(json.dumps({"path": r["path"], "culture": r["culture"],
                                                   "instrument": r["instrument"]}) + "\n" for r in rows))
    model = args.model
    if model is None and args.pretrain_steps:
        model = pretrain(out, args.pretrain_steps)
    elif model is None:
        from melos.models import load_encoder

        torch.manual_seed(0)
        model = str(load_encoder("mert-tiny").save_pretrained(out / "mert-tiny-seed0"))
    summary = embed(model, search_manifest, out / "emb", window=5.0, progress=False)
    assert summary.ok, summary.failed
    print(f"{len(rows)} clips rendered and embedded with {model} in {time.perf_counter() - start:.0f} s")
    by_path = {str(Path(manifest.parent / r["path"])): r for r in rows}
    chance = {key: np.mean([(sum(o[key] == r[key] for o in rows) - 1) / (len(rows) - 1) for r in rows])
              for key in ("culture", "instrument")}
    n_layers = len(Embeddings.load(next((out / "emb").rglob("*.safetensors"))).layers)
    print(f"| layer | P@{args.k} same tradition | P@{args.k} same lead instrument | query ms |")
    print("|---|---|---|---|")
    for layer in range(n_layers):
        index, _ = VectorIndex.create(out / f"index-{layer}", out / "emb", layer, "track", search_manifest)
        hits = {"culture": [], "instrument": []}
        times = []
        for path, row in by_path.items():
            q = query_vector(out / "emb" / f"{row['path']}.safetensors", index.info)
            t = time.perf_counter()
            results = [h for h in index.search(q, args.k + 1) if h.path != path][: args.k]
            times.append(1000 * (time.perf_counter() - t))
            for key in hits:
                hits[key].append(np.mean([h.columns[key] == row[key] for h in results]))
        print(f"| {layer} | {np.mean(hits['culture']):.3f} | {np.mean(hits['instrument']):.3f} | "
              f"{np.median(times):.1f} |", flush=True)
    print(f"| chance | {chance['culture']:.3f} | {chance['instrument']:.3f} | |")


if __name__ == "__main__":
    main()
