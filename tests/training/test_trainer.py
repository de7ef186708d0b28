"""The trainer: stage 1 freezes the Transformer, the schedule is followed, resume is exact, NaN stops."""

import json
import math

import pytest
import torch

from melos.models import load_encoder
from melos.objectives.mert_loss import MERTHeads
from melos.objectives.mert_objective import MERTObjective, MERTObjectiveConfig
from melos.teachers.cqt import CQT
from melos.teachers.encodec_tokens import EncodecTokenizer
from melos.training.schedule import warmup_cosine
from melos.training.trainer import NonFiniteError, Stage, Trainer

STAGE1 = ["encoder.feature_extractor.*", "heads.*"]


class NoiseBatches:
    """Batch `step` is seeded noise: a pure function of the step, like CropBatcher."""

    def batch(self, step, batch_size):
        g = torch.Generator().manual_seed(step)
        return 0.1 * torch.randn(batch_size, 8000, generator=g), ["noise"] * batch_size


def objective(codec=EncodecTokenizer.tiny(), cqt=CQT()):
    torch.manual_seed(0)
    encoder = load_encoder("mert-tiny")
    heads = MERTHeads(encoder.hidden_size, codec.n_codebooks, codec.codebook_size, final_dim=16)
    return MERTObjective(encoder, heads, codec, cqt, MERTObjectiveConfig())


def stages(steps=4):
    return [Stage("stage1", steps, 5e-3, 5e-4, 0.25, STAGE1, batch_size=2, accumulation=2),
            Stage("stage2", steps, 1e-3, 1e-4, 0.25, ["*"], betas=(0.9, 0.95), batch_size=2)]


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stage1_trains_only_cnn_and_heads_and_follows_the_schedule(tmp_path):
    obj = objective()
    before = {k: v.clone() for k, v in obj.state_dict().items()}
    snapshots = {}
    Trainer(obj, lambda stage: NoiseBatches(), stages(), tmp_path, on_stage_end=lambda s, _: snapshots.__setitem__(
        s.name, {k: v.clone() for k, v in obj.state_dict().items()})).run()
    after1, after2 = snapshots["stage1"], snapshots["stage2"]
    transformer = [k for k in before if k.startswith(("encoder.encoder.", "encoder.feature_projection."))]
    assert transformer and all(torch.equal(before[k], after1[k]) for k in transformer)
    assert not torch.equal(before["encoder.feature_extractor.conv_layers.0.conv.weight"],
                           after1["encoder.feature_extractor.conv_layers.0.conv.weight"])
    assert not torch.equal(before["heads.codewords"], after1["heads.codewords"])
    assert all(not torch.equal(after1[k], after2[k]) for k in transformer if k.endswith("weight"))
    rows = read_rows(tmp_path / "metrics.jsonl")
    assert [(r["stage"], r["step"]) for r in rows] == [("stage1", i) for i in range(4)] + [("stage2", i) for i in range(4)]
    for r in rows:
        s = stages()[0] if r["stage"] == "stage1" else stages()[1]
        assert r["lr"] == pytest.approx(warmup_cosine(r["step"], 4, 1, s.lr_max, s.lr_min))
        assert not r["skipped"] and r["grad_norm"] > 0


class Crash(Exception):
    pass


def test_interrupted_run_resumes_with_the_same_losses(tmp_path):
    Trainer(objective(), lambda stage: NoiseBatches(), stages(), tmp_path / "full", checkpoint_every=2).run()
    full = read_rows(tmp_path / "full" / "metrics.jsonl")

    obj = objective()
    calls = {"n": 0}
    real = obj.forward

    def crashing(audio, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8 + 4:  # stage 1 = 4 steps x 2 micro-batches; crash at stage 2, step 3
            raise Crash
        return real(audio, **kwargs)

    obj.forward = crashing
    with pytest.raises(Crash):
        Trainer(obj, lambda stage: NoiseBatches(), stages(), tmp_path / "cut", checkpoint_every=2).run()
    Trainer(objective(), lambda stage: NoiseBatches(), stages(), tmp_path / "cut", checkpoint_every=2).run()
    resumed = read_rows(tmp_path / "cut" / "metrics.jsonl")
    last = {(r["stage"], r["step"]): r for r in resumed}  # re-done steps overwrite
    assert len(last) == len(full)
    for row in full:
        assert last[(row["stage"], row["step"])]["loss"] == pytest.approx(row["loss"], rel=1e-6)


def test_non_finite_losses_are_skipped_then_stop(tmp_path):
    obj = objective()
    real = obj.forward

    def nan_loss(audio, **kwargs):
        metrics = real(audio, **kwargs)
        metrics["loss"] = metrics["loss"] * float("nan")
        return metrics

    obj.forward = nan_loss
    before = {k: v.clone() for k, v in obj.state_dict().items()}
    with pytest.raises(NonFiniteError, match="3 steps in a row"):
        Trainer(obj, lambda stage: NoiseBatches(), stages(), tmp_path, max_bad_steps=3).run()
    assert all(torch.equal(before[k], v) for k, v in obj.state_dict().items())
    assert [r["skipped"] for r in read_rows(tmp_path / "metrics.jsonl")] == [True] * 3


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_steps_train(tmp_path, precision):
    obj = objective()
    before = obj.state_dict()["encoder.encoder.layers.0.attention.q_proj.weight"].clone()
    # fp16 starts with a loss scale of 2^16: early steps overflow and are skipped while it backs off
    n_steps = 2 if precision == "bfloat16" else 12
    Trainer(obj, lambda stage: NoiseBatches(), stages(n_steps)[1:], tmp_path, precision=precision,
            progress=False).run()
    rows = read_rows(tmp_path / "metrics.jsonl")
    assert not rows[-1]["skipped"]
    assert all(math.isfinite(r["loss"]) and r["throughput/audio_s_per_s"] > 0 for r in rows)
    assert not torch.equal(before, obj.state_dict()["encoder.encoder.layers.0.attention.q_proj.weight"])
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    with pytest.raises(ValueError, match="precision"):
        Trainer(obj, lambda stage: NoiseBatches(), stages(), tmp_path, precision="int8")
