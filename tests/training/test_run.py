"""Saving a stage: the folder holds encoder, heads and teacher, and appears only when all are written."""

import pytest
import torch
from safetensors.torch import load_file

from melos.models import load_encoder
from melos.objectives.rpq_objective import RPQHeads
from melos.teachers.random_projection import MelTokenizer
from melos.training import run
from melos.training.run import HEADS, TEACHER, save_stage


@pytest.fixture
def parts():
    encoder = load_encoder("branchformer-sm-tiny")
    return encoder, RPQHeads(encoder.hidden_size, 16, 512), MelTokenizer(codebook_size=16)


def test_stage_folder_holds_encoder_heads_and_teacher(tmp_path, parts):
    encoder, heads, teacher = parts
    save_stage(encoder, heads, teacher, tmp_path / "stage1")
    assert {p.name for p in (tmp_path / "stage1").iterdir()} == {"model.safetensors", HEADS, TEACHER}
    assert torch.equal(load_file(tmp_path / "stage1" / HEADS)["tokens.weight"], heads.tokens.weight.detach())
    assert [p.name for p in tmp_path.iterdir()] == ["stage1"]


def test_stage_folder_absent_when_writing_the_heads_fails(tmp_path, parts, monkeypatch):
    def fail(tensors, file):
        raise OSError("disk full")

    monkeypatch.setattr(run, "save_file", fail)
    with pytest.raises(OSError, match="disk full"):
        save_stage(*parts, tmp_path / "stage1")
    assert list(tmp_path.iterdir()) == []
