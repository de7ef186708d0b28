"""End to end through the CLI: pretrain, then two-stage adaptation with replay; recipes parse."""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from melos.cli import main
from melos.models import load_encoder
from melos.quickstart.pipeline import load_config
from melos.training.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def write_corpus(folder: Path, name: str, n: int, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    t = np.arange(3 * 24000) / 24000
    for i in range(n):
        tone = np.sin(2 * np.pi * rng.uniform(100, 800) * t) * np.exp(-2 * (t % 0.5))
        sf.write(folder / f"{i}.wav", (0.3 * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32), 24000)
    assert main(["data", "scan", str(folder), "--out", str(folder / f"{name}.jsonl"), "--culture", name,
                 "--no-progress"]) == 0
    return folder / f"{name}.jsonl"


@pytest.mark.parametrize("name", sorted(p.name for p in RECIPES.glob("*.yaml") if p.name != "quickstart.yaml"))
def test_shipped_recipes_parse(name):
    from melos.lm.training import load_recipe as load_lm_recipe

    recipe = (load_lm_recipe if name.startswith("lm-") else load_recipe)(RECIPES / name)
    assert recipe.stages and all(s.steps > 0 and s.lr_max >= s.lr_min for s in recipe.stages)


def test_quickstart_settings_parse():
    config = load_config(RECIPES / "quickstart.yaml")
    for recipe in (config.pretrain, config.adapt):
        assert recipe.stages and all(s.steps > 0 and s.lr_max >= s.lr_min for s in recipe.stages)
    assert config.adapt.stages[0].replay_fraction == 0.2 and config.lambdas
    split = config.eval_corpus.split
    assert set(split) == {"train", "valid", "test"} and sum(split.values()) == pytest.approx(1)
    assert config.eval_corpus.seed != config.corpus.seed
    assert load_config(RECIPES / "quickstart.yaml", ["eval_corpus.split.test=3e-1"]).eval_corpus.split["test"] == 0.3
    with pytest.raises(ValueError, match="eval_corpus: split: expected a mapping"):
        load_config(RECIPES / "quickstart.yaml", ["eval_corpus.split=0.5"])
    with pytest.raises(ValueError, match="eval_corpus.split needs positive train, valid and test"):
        load_config(RECIPES / "quickstart.yaml", ["eval_corpus.split={train: 0.5, tset: 0.5}"])
    with pytest.raises(ValueError, match="eval_corpus.seed must differ from corpus.seed"):
        load_config(RECIPES / "quickstart.yaml", ["eval_corpus.seed=0"])


def test_recipe_errors_and_overrides(tmp_path):
    recipe = load_recipe(RECIPES / "culturemert-tiny.yaml", ["stages.1.steps=7", "objective.weights.acoustic=10"])
    assert recipe.stages[1].steps == 7 and recipe.objective.weights.acoustic == 10.0
    assert recipe.stages[0].betas == (0.9, 0.999)
    (tmp_path / "bad.yaml").write_text("stages: [{name: s, steps: two, lr_max: 1, lr_min: 0}]\n")
    with pytest.raises(ValueError, match="steps: expected int"):
        load_recipe(tmp_path / "bad.yaml")
    (tmp_path / "typo.yaml").write_text("stagez: []\n")
    with pytest.raises(ValueError, match="unknown key"):
        load_recipe(tmp_path / "typo.yaml")


def test_pretrain_then_two_stage_adaptation(tmp_path, capsys):
    western = write_corpus(tmp_path / "western", "western", 3, 0)
    makam = write_corpus(tmp_path / "makam", "makam", 3, 1)
    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(western),
                 "--out", str(tmp_path / "base")]) == 0
    base = tmp_path / "base" / "final"
    assert (base / "config.json").is_file() and (base / "heads.safetensors").is_file()

    assert main(["adapt", "--recipe", str(RECIPES / "culturemert-tiny.yaml"), "--from", str(base),
                 "--data", str(makam), "--replay", str(western), "--out", str(tmp_path / "adapted")]) == 0
    before, stage1, stage2 = (load_encoder(d).state_dict() for d in
                              (base, tmp_path / "adapted" / "stage1", tmp_path / "adapted" / "stage2"))
    transformer = [k for k in before if k.startswith("encoder.")]
    assert all(torch.equal(before[k], stage1[k]) for k in transformer)  # stage 1: Transformer untouched
    assert not torch.equal(before["feature_extractor.conv_layers.0.conv.weight"],
                           stage1["feature_extractor.conv_layers.0.conv.weight"])
    heads0, heads1 = load_file(base / "heads.safetensors"), load_file(tmp_path / "adapted" / "stage1" / "heads.safetensors")
    assert not torch.equal(heads0["codewords"], heads1["codewords"])
    assert torch.equal(heads0["final_proj.weight"], heads1["final_proj.weight"])  # heads existed: only codewords
    assert any(not torch.equal(stage1[k], stage2[k]) for k in transformer)
    rows = [json.loads(l) for l in (tmp_path / "adapted" / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows] == ["stage1"] * 3 + ["stage2"] * 3
    assert "final" in capsys.readouterr().out

    # adapting an official checkpoint (no heads): heads are created and trained in stage 1
    official = tmp_path / "official"
    load_encoder("mert-tiny").save_pretrained(official)
    assert main(["adapt", "--recipe", str(RECIPES / "culturemert-tiny.yaml"), "--from", str(official),
                 "--data", str(makam), "--replay", str(western), "--out", str(tmp_path / "fresh"),
                 "--set", "stages.1.steps=1"]) == 0
    assert (tmp_path / "fresh" / "final" / "heads.safetensors").is_file()
    assert main(["adapt", "--recipe", str(RECIPES / "culturemert-tiny.yaml"), "--from", str(official),
                 "--data", str(makam), "--out", str(tmp_path / "noreplay")]) == 2
    assert "--replay" in capsys.readouterr().err


@pytest.mark.parametrize("dated", [0, 2], ids=["paths-only", "mixed"])
def test_a_manifest_without_durations_trains(tmp_path, capsys, dated):
    manifest = write_corpus(tmp_path / "western", "western", 3, 0)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    hand_written = [{"path": Path(r["path"]).name} | ({"duration": r["duration"]} if i < dated else {})
                    for i, r in enumerate(rows)]
    (tmp_path / "western" / "paths.jsonl").write_text("".join(json.dumps(r) + "\n" for r in hand_written))
    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data",
                 str(tmp_path / "western" / "paths.jsonl"), "--out", str(tmp_path / "base"),
                 "--set", "stages.0.steps=1"]) == 0, capsys.readouterr().err
    assert (tmp_path / "base" / "final" / "config.json").is_file()


def test_monitor_probes_during_training(tmp_path, tone_task):
    task = tone_task(tmp_path, "multiclass")
    data = write_corpus(tmp_path / "music", "music", 2, 0)
    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(data),
                 "--out", str(tmp_path / "run"), "--set", f"monitor.task={task}", "--set", "monitor.every=2",
                 "--set", "monitor.epochs=3", "--no-progress"]) == 0
    rows = [json.loads(l) for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    key = "monitor/tones-multiclass/accuracy"
    assert [key in r for r in rows] == [False, True, False, True]
    assert all(0.0 <= r[key] <= 1.0 for r in rows if key in r)


def test_random_projection_teacher_is_fitted_once_and_kept_through_adaptation(tmp_path, capsys):
    western = write_corpus(tmp_path / "western", "western", 3, 0)
    makam = write_corpus(tmp_path / "makam", "makam", 3, 1)
    teacher = [arg for kv in ("teacher.acoustic=random-projection", "teacher.codebooks=2", "teacher.codebook_size=32")
               for arg in ("--set", kv)]
    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(western),
                 "--out", str(tmp_path / "base"), *teacher]) == 0
    fitted = load_file(tmp_path / "base" / "final" / "teacher.safetensors")
    assert set(fitted) >= {"quantizers.0.mean", "quantizers.1.codebook"} and bool(fitted["quantizers.0.fitted"])
    assert torch.equal(fitted["quantizers.0.std"], fitted["quantizers.1.std"])
    assert load_file(tmp_path / "base" / "final" / "heads.safetensors")["codewords"].shape[:2] == (2, 32)

    assert main(["adapt", "--recipe", str(RECIPES / "culturemert-tiny.yaml"), "--from", str(tmp_path / "base" / "final"),
                 "--data", str(makam), "--replay", str(western), "--out", str(tmp_path / "adapted"), *teacher]) == 0
    kept = load_file(tmp_path / "adapted" / "final" / "teacher.safetensors")
    assert all(torch.equal(kept[k], v) for k, v in fitted.items())  # not refitted on makam

    # statistics from another manifest: the same teacher as training on that data
    one_step = ["--set", "stages.0.steps=1", "--no-progress"]
    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(western),
                 "--out", str(tmp_path / "stats"), *teacher, *one_step, "--set", f"teacher.statistics={makam}"]) == 0
    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(makam),
                 "--out", str(tmp_path / "on-makam"), *teacher, *one_step]) == 0
    a, b = (load_file(tmp_path / d / "final" / "teacher.safetensors") for d in ("stats", "on-makam"))
    assert torch.equal(a["quantizers.0.mean"], b["quantizers.0.mean"])
    assert not torch.equal(a["quantizers.0.mean"], fitted["quantizers.0.mean"])

    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(western),
                 "--out", str(tmp_path / "bad"), "--set", "teacher.acoustic=k-means"]) == 2
    assert "k-means" in capsys.readouterr().err


def test_random_projection_teacher_on_unreadable_data_says_so(tmp_path, capsys):
    (tmp_path / "broken.wav").write_bytes(b"RIFF not audio")
    (tmp_path / "data.jsonl").write_text(json.dumps({"path": str(tmp_path / "broken.wav"), "duration": 3.0}) + "\n")
    assert main(["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(tmp_path / "data.jsonl"),
                 "--out", str(tmp_path / "run"), "--set", "teacher.acoustic=random-projection"]) == 2
    err = capsys.readouterr().err
    assert "broken.wav" in err and "--data" in err
    assert not (tmp_path / "run" / "final").exists()


def test_efficient_encoder_pretrains_and_adapts_through_the_cli(tmp_path):
    western = write_corpus(tmp_path / "western", "western", 3, 0)
    makam = write_corpus(tmp_path / "makam", "makam", 3, 1)
    assert main(["pretrain", "--recipe", str(RECIPES / "branchformer-sm-tiny.yaml"), "--data", str(western),
                 "--out", str(tmp_path / "base"), "--no-progress"]) == 0
    base = tmp_path / "base" / "final"
    assert {p.name for p in base.iterdir()} == {"model.safetensors", "heads.safetensors", "teacher.safetensors"}
    rows = [json.loads(l) for l in (tmp_path / "base" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(np.isfinite(r["loss/tokens"]) and np.isfinite(r["loss/mel"]) for r in rows)

    assert main(["adapt", "--recipe", str(RECIPES / "efficient-adapt-tiny.yaml"), "--from", str(base),
                 "--data", str(makam), "--replay", str(western), "--out", str(tmp_path / "adapted"),
                 "--no-progress"]) == 0
    before, stage1, stage2 = (load_encoder(d).state_dict() for d in
                              (base, tmp_path / "adapted" / "stage1", tmp_path / "adapted" / "final"))
    blocks = [k for k in before if k.startswith("blocks.")]
    assert all(torch.equal(before[k], stage1[k]) for k in blocks)  # stage 1: blocks untouched
    assert not torch.equal(before["front_end.convs.0.weight"], stage1["front_end.convs.0.weight"])
    assert any(not torch.equal(stage1[k], stage2[k]) for k in blocks)
    fitted, kept = (load_file(d / "teacher.safetensors") for d in (base, tmp_path / "adapted" / "final"))
    assert all(torch.equal(kept[k], v) for k, v in fitted.items())  # teacher not refitted on makam


def test_truncated_training_files_train_only_with_allow_truncated(tmp_path, caplog):
    manifest = write_corpus(tmp_path / "western", "western", 2, 0)
    for path in (tmp_path / "western").glob("*.wav"):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 3 // 4])  # a partial download: 2.25 s of 3 s
    paths = tmp_path / "western" / "paths.jsonl"  # durations left to the file headers
    paths.write_text("".join(json.dumps({"path": json.loads(line)["path"]}) + "\n"
                             for line in manifest.read_text().splitlines()))
    args = ["pretrain", "--recipe", str(RECIPES / "mert-tiny-pretrain.yaml"), "--data", str(paths),
            "--set", "stages.0.steps=1", "--set", "teacher.acoustic=random-projection", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "strict")]) == 2
    assert any("0.wav: skipped, file is truncated" in r.getMessage() for r in caplog.records)
    caplog.clear()
    assert main([*args, "--out", str(tmp_path / "allowed"), "--allow-truncated"]) == 0
    assert (tmp_path / "allowed" / "final" / "config.json").is_file()
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "reading the audio" in r.getMessage()]
    assert len(warned) == 2 and all("header declares 72000 frames" in w for w in warned)
