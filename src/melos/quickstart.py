"""The built-in quickstart: a tiny end-to-end run on a laptop CPU, on audio it makes itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from .embedding import Embeddings, embed
from .models import load_encoder

SAMPLE_RATE = 24000


def write_test_audio(folder: Path, seconds: float = 4.0, seed: int = 0) -> list[Path]:
    """Three short clips: a C major triad, an A minor triad (both with a plucked envelope), noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = np.exp(-3.0 * (t % 0.5))  # a new note every half second

    def chord(freqs: list[float]) -> np.ndarray:
        return envelope * sum(np.sin(2 * np.pi * f * t) for f in freqs) / len(freqs)

    clips = {"c_major.wav": chord([261.63, 329.63, 392.00]), "a_minor.wav": chord([220.00, 261.63, 329.63]),
             "noise.flac": 0.1 * rng.standard_normal(t.size)}
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, audio in clips.items():
        paths.append(folder / name)
        sf.write(paths[-1], (0.5 * audio).astype(np.float32), SAMPLE_RATE)
    return paths


def quickstart(out: str | Path = "runs/quickstart") -> None:
    out = Path(out)
    print(f"melos quickstart -> {out}/")
    torch.manual_seed(0)  # the same random encoder, so reruns print the same numbers
    paths = write_test_audio(out / "audio")
    print(f"1. wrote {len(paths)} test clips of 4 s at {SAMPLE_RATE} Hz to {out / 'audio'}")
    load_encoder("mert-tiny").save_pretrained(out / "model")
    encoder = load_encoder(out / "model")
    n_params = sum(p.numel() for p in encoder.parameters())
    print(f"2. built a tiny MERT encoder ({n_params:,} parameters, {encoder.n_hidden_states} hidden states), "
          f"saved it in the official layout to {out / 'model'} and loaded it back")
    summary = embed(encoder, out / "audio", out / "embeddings", window=2.0, progress=False)
    print(f"3. embedded {summary.n_done} files in 2 s windows in {summary.wall_seconds:.2f} s "
          f"({summary.audio_seconds / summary.wall_seconds:.0f}x real time), {len(summary.failed)} failed")
    vectors = {}
    for path in paths:
        emb = Embeddings.load(out / "embeddings" / f"{path.name}.safetensors")
        vectors[path.stem] = emb.embeddings[-1].mean(0)
        print(f"   {path.name}: embeddings {tuple(emb.embeddings.shape)} = [layers, windows, hidden], "
              f"windows start at {emb.window_starts.tolist()} s")
    a, b, c = (vectors[k] / vectors[k].norm() for k in ("c_major", "a_minor", "noise"))
    print(f"4. cosine similarity of last-layer embeddings (random weights, so only a sanity check): "
          f"C major vs A minor {float(a @ b):.3f}, C major vs noise {float(a @ c):.3f}")
    print(f"done. Next: `melos embed --model mert-v1-95m --input YOUR_MUSIC/ --out emb/` "
          f"(or a local MERT checkpoint directory as --model)")
