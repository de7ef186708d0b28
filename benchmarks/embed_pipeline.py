"""Pipeline-level embedding on real music: `melos embed` vs the MERT model card's recipe.

    python benchmarks/embed_pipeline.py [--files N] [--preset mert-v1-95m] [--batch-size 1]

Music: Debian's wesnoth-1.16-music (Ogg Vorbis, 44.1 kHz stereo), installed with apt if
missing. Both sides use the same random-weight 95M model saved in the official layout, the
same 30 s windows, and produce [13, n_windows, 768] mean-pooled embeddings per file. The two
alternate file by file (order swapped every file), since this machine's speed drifts by tens
of percent over minutes.

The baseline is what a user writes from the model card, per file: decode the whole file,
downmix, resample (soxr here, as torchaudio is not available), then per window
`processor(...)` -> `HubertModel(**inputs, output_hidden_states=True)` -> stack -> mean over
time. melos runs `melos.embed` on the folder. Prints wall time, real-time factors, the speed
ratio and the max abs difference of the embeddings.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import soundfile as sf
import soxr
import torch
from transformers import HubertModel, Wav2Vec2FeatureExtractor

from melos.embedding import Embeddings, embed
from melos.embedding.pipeline import file_windows
from melos.models import load_encoder

MUSIC = "/usr/share/games/wesnoth/1.16/data/core/music"


def music_files(n_files: int | None) -> list[Path]:
    if not glob.glob(f"{MUSIC}/*.ogg"):
        subprocess.run(["apt-get", "install", "-y", "wesnoth-1.16-music"], check=True)
    files = sorted(Path(p) for p in glob.glob(f"{MUSIC}/*.ogg"))
    return files[:n_files] if n_files else files


def model_card_embed(model: HubertModel, processor: Wav2Vec2FeatureExtractor, path: Path,
                     window: float) -> torch.Tensor:
    """The MERT model card's recipe, applied window by window. Returns [13, n_windows, 768]."""
    rate = processor.sampling_rate
    audio, sr = sf.read(path, dtype="float32")
    audio = soxr.resample(audio.mean(axis=1), sr, rate, quality="HQ")
    windows = []
    for start in file_windows(len(audio) / rate, window, window):
        clip = audio[round(start * rate): round((start + window) * rate)]
        inputs = processor(clip, sampling_rate=rate, return_tensors="pt")
        with torch.no_grad():
            outputs = model(**inputs, output_hidden_states=True)
        windows.append(torch.stack(outputs.hidden_states).squeeze(1).mean(-2))  # (13, 768)
    return torch.stack(windows, dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=None, help="use the first N files (default: all)")
    parser.add_argument("--preset", default="mert-v1-95m")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()

    files = music_files(args.files)
    hours = sum(sf.info(f).duration for f in files) / 3600
    work = Path(tempfile.mkdtemp(prefix="melos-bench-"))
    try:
        torch.manual_seed(0)
        load_encoder(args.preset).save_pretrained(work / "model")
        (work / "music").mkdir()
        for f in files:
            os.symlink(f, work / "music" / f.name)

        encoder = load_encoder(work / "model")
        model = HubertModel.from_pretrained(str(work / "model")).eval()
        processor = Wav2Vec2FeatureExtractor.from_pretrained(str(work / "model"))
        times = {"melos": 0.0, "card": 0.0}
        reference = {}

        def run_melos(path: Path) -> None:
            summary = embed(encoder, work / "music" / path.name, work / "out", window=args.window,
                            batch_size=args.batch_size, skip_existing=True, progress=False)
            assert summary.ok, summary.failed

        def run_card(path: Path) -> None:
            reference[path.name] = model_card_embed(model, processor, path, args.window)

        for i, path in enumerate(files):
            for name, fn in ([("melos", run_melos), ("card", run_card)][:: 1 if i % 2 == 0 else -1]):
                start = time.perf_counter()
                fn(path)
                times[name] += time.perf_counter() - start
        t_melos, t_card = times["melos"], times["card"]

        diff = max((Embeddings.load(work / "out" / f"{name}.safetensors").embeddings - emb).abs().max().item()
                   for name, emb in reference.items())
        print(f"{len(files)} files, {hours * 60:.1f} min of music, {args.preset} (random weights), "
              f"{args.window:g} s windows, CPU float32, {torch.get_num_threads()} threads")
        print(f"  melos embed (batch {args.batch_size}): {t_melos:7.1f} s  ({hours * 3600 / t_melos:.2f}x real time)")
        print(f"  model-card recipe:        {t_card:7.1f} s  ({hours * 3600 / t_card:.2f}x real time)")
        print(f"  speed-up: {t_card / t_melos:.2f}x; max abs difference of embeddings: {diff:.2e}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
