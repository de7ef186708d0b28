"""Shared fixtures: small generated probing tasks."""

import json

import numpy as np
import pytest
import soundfile as sf


def _tone_task(tmp_path, kind):
    """Low vs high tones: the label is audible, so a probe must beat chance. For "regression"
    the target is 1000 + log2(frequency): far from 0, as raw annotation scales are."""
    rng = np.random.default_rng(0)
    t = np.arange(24000) / 24000
    rows = []
    for split, n in (("train", 16), ("valid", 6), ("test", 6)):
        for i in range(n):
            high = i % 2 == 1
            freq = rng.uniform(1500, 3000) if high else rng.uniform(80, 200)
            path = tmp_path / f"{kind}-{split}{i}.wav"
            sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 24000)
            label = {"multiclass": "high" if high else "low", "multilabel": ["high", "bright"] if high else ["low"],
                     "regression": [1000 + float(np.log2(freq))]}[kind]
            rows.append({"path": path.name, "split": split, "labels": label})
    (tmp_path / f"{kind}.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / f"{kind}.yaml").write_text(f"name: tones-{kind}\ntype: {kind}\nmanifest: {kind}.jsonl\nwindow: 1\n")
    return tmp_path / f"{kind}.yaml"


@pytest.fixture
def tone_task():
    """tone_task(folder, "multiclass" | "multilabel" | "regression") -> path of a small learnable task file."""
    return _tone_task
