"""Shared by the parquet and Ray engine tests: one tiny encoder and a folder of mixed audio."""

import numpy as np
import pytest
import soundfile as sf
import torch

from melos.models import load_encoder


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return load_encoder("mert-tiny")


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """Good files of several rates, channels and formats, and two bad ones."""
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("music")
    (folder / "sub").mkdir()
    sf.write(folder / "a.wav", 0.3 * rng.standard_normal(int(2.5 * 24000)).astype(np.float32), 24000)
    sf.write(folder / "sub" / "b.flac", 0.3 * rng.standard_normal((int(1.7 * 44100), 2)), 44100)
    sf.write(folder / "c.ogg", 0.3 * rng.standard_normal(int(3.2 * 22050)), 22050)
    sf.write(folder / "d.wav", 0.3 * rng.standard_normal(int(2.0 * 16000)).astype(np.float32), 16000)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "notes.mp3").write_text("not audio at all")
    return folder
