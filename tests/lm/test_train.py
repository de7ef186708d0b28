"""`melos lm train` / `eval` mechanics: what each stage trains, a tiny model that must listen to
tell four clips apart, the CLI end to end, and bad input named by item."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from melos.cli import main
from melos.lm.muchomusic import Question, prompt
from melos.lm.prompting import AUDIO_MARKER
from melos.lm.report import load_model, score_runs
from melos.lm.rows import Row, Turn, write_rows
from melos.lm.toy import ToyLMConfig, write_toy_lm
from melos.lm.training import LMObjective, LMRecipe, LMStage, build_model, featurizer_of, load_recipe, prepare
from melos.models import load_encoder
from melos.training.trainer import Trainer

SR = 24000
QUESTION = "Which sound is this?"
OPTIONS = ("hum", "whistle", "hiss", "clicks")
SMALL = ToyLMConfig(vocab_size=300, hidden_size=64, layers=2, heads=4, kv_heads=2, intermediate_size=128)


def question(k: int, path: str) -> Question:
    return Question(id=f"tone-{k}", audio=path, question=QUESTION, options=OPTIONS, answer=k, source="test",
                    knowledge=("pitch",))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Four 1 s sounds (a 150 Hz hum, a 3 kHz whistle, white noise, a click train) and, per sound,
    a caption row and a MuChoMusic-style question row answered with the option's text, as
    `melos lm demo` trains."""
    root = tmp_path_factory.mktemp("lmdata")
    torch.manual_seed(0)
    load_encoder("mert-tiny").save_pretrained(root / "encoder")  # a folder: the same weights at every load
    t = np.arange(SR) / SR
    clicks = np.zeros(SR)
    clicks[::SR // 8] = 1.0
    sounds = (0.5 * np.sin(2 * np.pi * 150 * t), 0.5 * np.sin(2 * np.pi * 3000 * t),
              0.3 * np.random.default_rng(0).standard_normal(SR), clicks)
    questions = []
    for k, sound in enumerate(sounds):
        sf.write(root / f"tone{k}.wav", sound, SR)
        questions.append(question(k, str(root / f"tone{k}.wav")))
    captions = [Row(f"c{k}", q.audio, [Turn(f"{AUDIO_MARKER}\nDescribe this music.", f"a {OPTIONS[k]}")])
                for k, q in enumerate(questions)]
    rows = [Row(q.id, q.audio, [Turn(f"{AUDIO_MARKER}\n{prompt(q)}", q.options[q.answer])]) for q in questions]
    write_rows(captions, root / "captions.jsonl")
    write_rows(rows, root / "instructions.jsonl")
    conversations = [[(prompt(q), q.options[q.answer])] for q in questions]
    texts = [f"User: {prompt(q)}\nAssistant: {q.options[q.answer]}" for q in questions] + ["a hum"] * 4
    write_toy_lm(root / "lm", texts * 10, SMALL, conversations=conversations, steps=100, batch_size=8,
                 lr=1e-2)  # knows the answer format
    (root / "questions.json").write_text(json.dumps([
        {"question_id": q.id, "question": q.question, "correct_answer": q.options[q.answer],
         **{f"distractor_{i}_answer": o for i, o in enumerate([o for o in q.options if o != q.options[q.answer]], 1)},
         "audio_path": q.audio, "dataset": "test", "music_knowledge": ["pitch"]} for q in questions]))
    return root


def recipe(root, **changes) -> LMRecipe:
    stages = [LMStage(name="align", steps=2, lr_max=1e-3, lr_min=1e-4, batch_size=2, data="captions",
                      trainable=["model.connector.*"]),
              LMStage(name="instruct", steps=2, lr_max=1e-3, lr_min=1e-4, batch_size=2, data="instructions",
                      trainable=["model.connector.*", "*lora_*"])]
    fields = dict(encoder=str(root / "encoder"), lm=str(root / "lm"), captions=str(root / "captions.jsonl"),
                  instructions=str(root / "instructions.jsonl"), layers=[-2, -1], stride=15, stages=stages,
                  feature_cache=str(root / "cache"), lora=dict(r=4, alpha=8, dropout=0.0,
                                                               target_modules=["q_proj", "k_proj", "v_proj", "o_proj"]))
    from melos.lm.training import LoRA

    fields["lora"] = LoRA(**fields["lora"])
    return LMRecipe(**(fields | changes))


def test_each_stage_trains_only_its_parameters(data):
    r = recipe(data)
    torch.manual_seed(0)
    model, tokenizer = build_model(r)
    examples = prepare(__import__("melos.lm.rows", fromlist=["read_rows"]).read_rows(r.instructions), model,
                       tokenizer, featurizer_of(model, None), 512, progress=False)
    objective = LMObjective(model, tokenizer.pad_token_id)
    trainer = Trainer(objective, lambda s: None, r.stages, data / "unused", progress=False)
    batch = {"examples": [(e.ids, e.labels) for e in examples], "features": [[e.features] for e in examples],
             "seconds": [e.seconds for e in examples]}
    for stage, allowed in ((r.stages[0], ("model.connector.",)), (r.stages[1], ("model.connector.", "lora_"))):
        trainer.trainable(stage)
        objective.zero_grad(set_to_none=True)
        objective(batch)["loss"].backward()
        with_grad = {n for n, p in objective.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
        assert with_grad and all(any(a in n for a in allowed) for n in with_grad), sorted(with_grad)[:5]
        if stage.name == "instruct":
            assert any("lora_" in n for n in with_grad) and any("connector" in n for n in with_grad)
    assert not any(p.requires_grad for p in model.encoder.parameters())  # frozen, and not a submodule
    assert not any(n.startswith("model._encoder") for n, _ in objective.named_parameters())


def test_a_tiny_model_learns_to_tell_four_clips_apart_by_listening(data, tmp_path):
    """The same question for four tones, four answers: only the audio says which. After a short
    instruct run the answers are right with the audio, and with silence one answer is given to all."""
    r = recipe(data, feature_cache=str(tmp_path / "cache"),
               stages=[LMStage(name="instruct", steps=120, lr_max=1e-2, lr_min=1e-3, batch_size=4, data="instructions",
                               warmup_fraction=0.0, trainable=["model.connector.*", "*lora_*"])])
    from melos.lm.training import train

    folder = train(r, tmp_path / "run", progress=False)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert np.mean(losses[-5:]) < 0.2 * np.mean(losses[:5])
    model, tokenizer = load_model(folder)
    qs = [question(k, str(data / f"tone{k}.wav")) for k in range(4)]
    results = score_runs(model, tokenizer, qs, ["none", "silence"], batch_size=4, progress=False)
    assert results["runs"]["none"]["accuracy"] == 1.0, (results["runs"]["none"]["outputs"], losses[-10:])
    assert results["runs"]["silence"]["accuracy"] <= 0.5  # one answer for all four silent clips: at most 1/4 right


def test_cli_train_then_eval_with_an_ablation(data, tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    r = recipe(data)
    path.write_text(yaml.safe_dump({
        "encoder": r.encoder, "lm": r.lm, "captions": r.captions, "instructions": r.instructions,
        "layers": r.layers, "stride": r.stride, "feature_cache": r.feature_cache,
        "stages": [{k: getattr(s, k) for k in ("name", "steps", "lr_max", "lr_min", "batch_size", "data", "trainable")}
                   for s in r.stages]}))
    assert main(["lm", "train", str(path), "--out", str(tmp_path / "run"), "--no-progress",
                 "--set", "stages.1.steps=1"]) == 0
    assert (tmp_path / "run" / "align" / "config.json").is_file()
    assert main(["lm", "eval", str(tmp_path / "run" / "instruct"), str(data / "questions.json"),
                 "--audio-ablation", "noise", "--out", str(tmp_path / "eval"), "--no-progress",
                 "--feature-cache", str(tmp_path / "cache")]) == 0
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(results["runs"]) == {"none", "noise"} and results["n_questions"] == 4
    assert "drop" in results["runs"]["noise"] and "knowledge/pitch" in results["runs"]["none"]["per_category"]
    assert "audio noise" in capsys.readouterr().out
    assert main(["lm", "eval", str(tmp_path / "run" / "align"), str(data / "captions.jsonl"), "--task", "caption",
                 "--out", str(tmp_path / "cap"), "--no-progress", "--feature-cache", str(tmp_path / "cache")]) == 0
    captions = json.loads((tmp_path / "cap" / "results.json").read_text())
    assert captions["n"] == 4 and 0 <= captions["rouge_l"] <= 1 and "sacrebleu" in captions["definitions"]["bleu"]
    assert captions["examples"][0]["reference"] == "a hum"


def test_bad_input_is_named(data, tmp_path, capsys):
    rows = [Row("gone", str(tmp_path / "missing.wav"), [Turn("Describe.", "x")])]
    write_rows(rows, tmp_path / "bad.jsonl")
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"encoder": "mert-tiny", "lm": str(data / "lm"), "captions": str(tmp_path / "bad.jsonl"),
                                    "layers": [-1], "stages": [{"name": "align", "steps": 1, "lr_max": 1e-3,
                                                                "lr_min": 1e-4, "trainable": ["model.connector.*"]}]}))
    assert main(["lm", "train", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "gone: missing audio" in capsys.readouterr().err
    no_tokenizer = tmp_path / "bare-lm"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tokenizer / name).write_bytes((data / "lm" / name).read_bytes())
    assert main(["lm", "train", str(path), "--out", str(tmp_path / "run2"), "--no-progress",
                 "--set", f"lm={no_tokenizer}"]) == 2
    assert "no tokenizer" in capsys.readouterr().err
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(3 * SR), SR)
    write_rows([Row("too-long", str(long), [Turn("Describe.", "x")])], tmp_path / "long.jsonl")
    assert main(["lm", "train", str(path), "--out", str(tmp_path / "run3"), "--no-progress",
                 "--set", f"captions={tmp_path / 'long.jsonl'}", "--set", "max_audio_seconds=2"]) == 2
    err = capsys.readouterr().err
    assert "too-long" in err and "longer than the configured maximum" in err
    assert load_recipe(path).stages[0].data == "captions"


def test_two_processes_train_it_with_torchrun(data, tmp_path):
    """`torchrun -m melos.cli lm train` on 2 CPU processes (gloo): each takes half of every global batch."""
    import subprocess
    import sys

    path = tmp_path / "recipe.yaml"
    r = recipe(data)
    path.write_text(yaml.safe_dump({
        "encoder": r.encoder, "lm": r.lm, "captions": r.captions, "instructions": r.instructions,
        "layers": r.layers, "stride": r.stride, "feature_cache": r.feature_cache, "seed": 3,
        "stages": [{"name": "instruct", "steps": 3, "lr_max": 1e-3, "lr_min": 1e-4, "batch_size": 4,
                    "data": "instructions", "trainable": ["model.connector.*"]}]}))
    run = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "melos.cli",
           "lm", "train", str(path), "--no-progress", "--out"]
    subprocess.run([*run, str(tmp_path / "ddp")], check=True, timeout=300, capture_output=True)
    assert main(["lm", "train", str(path), "--out", str(tmp_path / "single"), "--no-progress"]) == 0
    ddp = [json.loads(x)["loss"] for x in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    single = [json.loads(x)["loss"] for x in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    assert len(ddp) == len(single) == 3
    # Same weights and rows at step 0; the loss is a mean over answer tokens per process, averaged
    # over the two, so it differs from the one-process mean only by how tokens split between them.
    assert ddp[0] == pytest.approx(single[0], rel=0.15)
    assert load_model(tmp_path / "ddp" / "instruct")[0].connector is not None  # rank 0 exported a loadable model
