"""`melos lm` on real LM architectures: tiny random Llama- and Qwen2-style LMs saved in bfloat16
with a chat template and a trained tokenizer, trained with a float32 recipe, checkpointed with
only what trains, evaluated by both MC scoring modes under ablations."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from melos.cli import main
from melos.lm.audio_features import CHUNK_SECONDS, AudioFeaturizer, Clip
from melos.lm.checkpoint import CONNECTOR_FILE, export_merged, load_tokenizer, load_trained
from melos.lm.evaluate import features_for, option_log_probs, shuffled_clips
from melos.lm.model import MusicLM
from melos.lm.muchomusic import Question, prompt
from melos.lm.prompting import AUDIO_MARKER, IGNORE, encode_conversation
from melos.lm.report import score_runs
from melos.lm.rows import Row, Turn, write_rows
from melos.lm.toy import train_tokenizer
from melos.lm.training import LMRecipe, LMStage, LoRA, train
from melos.models import load_encoder

SR = 24000
OPTIONS = ("hum", "whistle", "hiss", "clicks")
CHATML = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
          "{% endif %}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
ARCHS = {
    "qwen2": (Qwen2Config, Qwen2ForCausalLM, CHATML, ["<|im_start|>", "<|im_end|>"], "<|im_end|>", None, 8),
    "llama": (LlamaConfig, LlamaForCausalLM, LLAMA3, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
              "<|eot_id|>", "<|begin_of_text|>", 0),
}


def question(k: int, path: str) -> Question:
    return Question(id=f"q{k}", audio=path, question="Which sound is this?", options=OPTIONS, answer=k % 4,
                    knowledge=("timbre",))


def write_lm(folder, arch: str):
    """A tiny random LM of `arch` in bfloat16, with a BPE tokenizer trained here and a chat template."""
    config_class, model_class, template, specials, eos, bos, padding = ARCHS[arch]
    texts = [prompt(question(k, "x")) + " " + o for k, o in enumerate(OPTIONS)] * 5 + ["Describe this music."]
    tokenizer = train_tokenizer(texts, 320)
    tokenizer.add_special_tokens({"additional_special_tokens": specials, "eos_token": eos,
                                  **({"bos_token": bos} if bos else {})})
    tokenizer.chat_template = template
    torch.manual_seed(0)
    lm = model_class(config_class(vocab_size=len(tokenizer) + padding, hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    lm.to(torch.bfloat16).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("reallm")
    torch.manual_seed(0)
    load_encoder("mert-tiny").save_pretrained(root / "encoder")
    t = np.arange(SR) / SR
    for k, freq in enumerate((150, 3000)):
        sf.write(root / f"tone{k}.wav", 0.5 * np.sin(2 * np.pi * freq * t), SR)
    qs = [question(k, str(root / f"tone{k}.wav")) for k in range(2)]
    write_rows([Row(f"c{k}", q.audio, [Turn(f"{AUDIO_MARKER}\nDescribe this music.", f"a {OPTIONS[k]}")])
                for k, q in enumerate(qs)], root / "captions.jsonl")
    write_rows([Row(q.id, q.audio, [Turn(f"{AUDIO_MARKER}\n{prompt(q)}", q.options[q.answer])]) for q in qs],
               root / "instructions.jsonl")
    for arch in ARCHS:
        write_lm(root / arch, arch)
    return root


def recipe(root, arch: str, **changes) -> LMRecipe:
    stages = [LMStage(name="align", steps=2, lr_max=1e-3, lr_min=1e-4, batch_size=2, data="captions",
                      trainable=["model.connector.*"]),
              LMStage(name="instruct", steps=2, lr_max=1e-3, lr_min=1e-4, batch_size=2, data="instructions",
                      trainable=["model.connector.*", "*lora_*"])]
    fields = dict(encoder=str(root / "encoder"), lm=str(root / arch), captions=str(root / "captions.jsonl"),
                  instructions=str(root / "instructions.jsonl"), layers=[-2, -1], stride=15, stages=stages,
                  feature_cache=str(root / "cache"), precision="float32",
                  lora=LoRA(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"]))
    return LMRecipe(**(fields | changes))


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_a_bf16_lm_with_a_chat_template_trains_checkpoints_and_evaluates(data, tmp_path, arch):
    folder = train(recipe(data, arch), tmp_path / "run", progress=False)
    # Only what trains is written: no LM weights in the stage folder or in last.pt.
    assert not (folder / "model.safetensors").exists()
    assert {CONNECTOR_FILE, "adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in folder.iterdir()}
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert last and all("connector." in k or "lora_" in k for k in last)
    model, tokenizer = load_trained(folder)
    assert model.lm.get_base_model().dtype == torch.bfloat16 and model.config.chat_template
    trainable_bytes = sum(v.numel() * v.element_size() for v in last.values())
    written = (folder / CONNECTOR_FILE).stat().st_size + (folder / "adapter_model.safetensors").stat().st_size
    assert written < 2 * trainable_bytes
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["peft_type"] == "LORA" and adapter["r"] == 4
    # The reloaded model is the trained one: same loss on an instruction as a fresh reload of last.pt's weights.
    qs = [question(k, str(data / f"tone{k}.wav")) for k in range(2)]
    results = score_runs(model, tokenizer, qs, ["none", "shuffle", "silence"], batch_size=3, progress=False,
                         max_new_tokens=4)
    for name in ("none", "shuffle", "silence"):
        run = results["runs"][name]
        assert 0 <= run["accuracy"] <= 1 and run["likelihood"]["instruction_following"] == 1.0
        assert name == "none" or "drop" in run["likelihood"]
    merged = export_merged(folder, tmp_path / "merged")
    back = MusicLM.from_pretrained(merged)
    features = [torch.randn(2, 3, model.config.encoder_hidden_size)]
    ids, _ = encode_conversation(tokenizer, [(f"{AUDIO_MARKER} what?", None)], [3], model.config.audio_token_ids,
                                 chat_template=True)
    ids = torch.tensor([ids])
    torch.testing.assert_close(back(ids, audio_features=features).logits.float(),
                               model(ids, audio_features=features).logits.float(), atol=0.05, rtol=0.05)


def test_from_parts_generates_with_a_bf16_lm(data):
    tokenizer = load_tokenizer(data / "llama")
    model = MusicLM.from_parts(load_encoder(str(data / "encoder")), data / "llama", tokenizer, layers=[1], stride=4)
    assert model.lm.dtype == torch.bfloat16 and model.connector.projector[0].weight.dtype == torch.float32
    ids, labels = encode_conversation(tokenizer, [(f"{AUDIO_MARKER} what?", "a hum")], [3],
                                      model.config.audio_token_ids)
    features = [torch.randn(1, 3, model.config.encoder_hidden_size)]
    loss = model(torch.tensor([ids]), labels=torch.tensor([labels]), audio_features=features).loss
    loss.backward()
    assert torch.isfinite(loss) and model.connector.projector[0].weight.grad is not None
    new = model.generate(torch.tensor([ids]), audio_features=features, max_new_tokens=3, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    assert new.shape == (1, 3)


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_chat_template_prompt_is_the_templates_text_with_audio_in_place(data, arch):
    tokenizer = load_tokenizer(data / arch)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|audio_start|>", "<|audio|>", "<|audio_end|>"]})
    audio_ids = {r: tokenizer.convert_tokens_to_ids(f"<|{t}|>")
                 for r, t in (("start", "audio_start"), ("audio", "audio"), ("end", "audio_end"))}
    turns = [(f"{AUDIO_MARKER}\nWhich sound?", "a hum"), ("And the tempo?", "slow")]
    ids, labels = encode_conversation(tokenizer, turns, [2], audio_ids, chat_template=True)
    messages = [m for user, answer in turns for m in ({"role": "user", "content": user},
                                                      {"role": "assistant", "content": answer})]
    expected = tokenizer.apply_chat_template(messages, tokenize=False).replace(
        AUDIO_MARKER, "<|audio_start|><|audio|><|audio|><|audio_end|>")
    assert tokenizer.decode(ids) == expected
    learned = tokenizer.decode([i for i, label in zip(ids, labels) if label != IGNORE])
    end = ARCHS[arch][4]
    assert learned.startswith("a hum" + end) and "slow" + end in learned and "Which" not in learned
    _, only = encode_conversation(tokenizer, turns[:1], [2], audio_ids, chat_template=True, learn_closing=False)
    assert tokenizer.decode([i for i, label in zip(ids, only) if label != IGNORE]) == "a hum"
    plain, _ = encode_conversation(tokenizer, turns, [2], audio_ids, chat_template=False)
    assert "User: " in tokenizer.decode(plain) and ARCHS[arch][3][0] not in tokenizer.decode(plain)


def test_option_log_likelihood_matches_one_sequence_at_a_time(data):
    tokenizer = load_tokenizer(data / "qwen2")
    model = MusicLM.from_parts(load_encoder(str(data / "encoder")), data / "qwen2", tokenizer, layers=[1], stride=4,
                               chat_template=True).eval()
    qs = [question(k, "x") for k in range(2)]
    features = [torch.randn(1, n, model.config.encoder_hidden_size) for n in (3, 5)]
    batched = option_log_probs(model, tokenizer, qs, features, batch_size=3)
    for q, f, values in zip(qs, features, batched):
        for option, got in zip(q.options, values):
            ids, labels = encode_conversation(tokenizer, [(f"{AUDIO_MARKER}\n{prompt(q)}", option)], [f.shape[1]],
                                              model.config.audio_token_ids, chat_template=True, learn_closing=False)
            logits = model(torch.tensor([ids]), audio_features=[f]).logits[0].float()
            positions = [t for t, label in enumerate(labels) if label != IGNORE]
            assert tokenizer.decode([ids[t] for t in positions]) == option
            mean = np.mean([torch.log_softmax(logits[t - 1], -1)[ids[t]].item() for t in positions])
            assert got == pytest.approx(mean, abs=2e-2)  # bf16 LM: padding changes the rounding slightly


def test_shuffle_gives_every_question_another_clip():
    clips = [Clip(p) for p in ("a", "a", "b", "c", "c", "c")]
    for seed in range(5):
        other = shuffled_clips(clips, seed)
        assert all(o != c for o, c in zip(other, clips)) and len(other) == len(clips)
        assert {o: None for o, c in zip(other, clips) if c == Clip("a")}.keys().__len__() == 1  # a clip maps to one
    with pytest.raises(ValueError, match="two different clips"):
        shuffled_clips([Clip("a"), Clip("a")], 0)


def test_shuffle_ablation_uses_the_other_clips_features(data):
    encoder = load_encoder(str(data / "encoder"))
    featurizer = AudioFeaturizer(encoder, [1], stride=15)
    paths = [str(data / "tone0.wav"), str(data / "tone0.wav"), str(data / "tone1.wav")]
    qs = [question(k, p) for k, p in enumerate(paths)]
    real = features_for(qs, featurizer, "none")
    shuffled = features_for(qs, featurizer, "shuffle")
    for k in range(3):
        assert not torch.equal(shuffled[k], real[k])
        assert any(torch.equal(shuffled[k], r) for r in real)


def test_a_folder_without_a_tokenizer_is_one_line(data, tmp_path, capsys):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((data / "llama" / "config.json").read_text())
    with pytest.raises(FileNotFoundError) as error:
        load_tokenizer(bare)
    assert str(bare) in str(error.value) and "no tokenizer" in str(error.value) and "\n" not in str(error.value)
    (bare / "tokenizer.json").write_text("{not json")
    with pytest.raises(FileNotFoundError) as error:
        load_tokenizer(bare)
    assert str(bare) in str(error.value) and "\n" not in str(error.value)


def test_long_clips_are_cut_in_30_s_chunks_and_concatenated(data):
    encoder = load_encoder(str(data / "encoder"))
    featurizer = AudioFeaturizer(encoder, [0, 2], stride=7, max_seconds=120)
    rate = encoder.sample_rate
    chunk = round(CHUNK_SECONDS * rate)
    audio = np.random.default_rng(0).standard_normal(2 * chunk + rate // 2).astype(np.float32)  # 60.5 s
    whole = featurizer.features(audio, rate)
    pieces = [featurizer.features(audio[s:s + chunk], rate) for s in (0, chunk, 2 * chunk)]
    torch.testing.assert_close(whole, torch.cat(pieces, dim=1))
    one = featurizer.features(audio[:chunk], rate).shape[1]
    assert whole.shape[1] == 2 * one + pieces[2].shape[1]


def test_cli_max_new_tokens_and_coco_metrics(data, tmp_path, monkeypatch, capsys):
    folder = train(recipe(data, "llama", stages=[LMStage(name="align", steps=1, lr_max=1e-3, lr_min=1e-4,
                                                         batch_size=2, data="captions",
                                                         trainable=["model.connector.*"])]),
                   tmp_path / "run", progress=False)
    seen = []
    original = MusicLM.generate

    def spy(self, *args, **kwargs):
        seen.append(kwargs["max_new_tokens"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MusicLM, "generate", spy)
    assert main(["lm", "eval", str(folder), str(data / "captions.jsonl"), "--task", "caption", "--max-new-tokens",
                 "3", "--no-progress", "--feature-cache", str(tmp_path / "cache"), "--coco", "--no-meteor",
                 "--out", str(tmp_path / "cap")]) == 0
    assert seen and set(seen) == {3}
    coco = json.loads((tmp_path / "cap" / "results.json").read_text())["coco"]
    assert {"bleu_1", "bleu_4", "rouge_l", "cider_d"} <= set(coco) and "meteor" not in coco
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["lm", "eval", str(folder), str(data / "captions.jsonl"), "--task", "caption", "--coco",
                 "--no-progress", "--feature-cache", str(tmp_path / "cache")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # earlier lines: the first run's loading bars
    assert last.startswith("melos: error:") and "METEOR needs Java" in last
    assert main(["lm", "eval", str(folder), str(data / "captions.jsonl"), "--max-new-tokens", "0",
                 "--no-progress", "--feature-cache", str(tmp_path / "cache")]) == 2


def test_training_resumes_from_the_trainable_only_checkpoint(data, tmp_path, monkeypatch):
    """A run stopped in its second stage and resumed from last.pt (which holds only the connector
    and LoRA) gives the losses and weights of one uninterrupted run."""
    from melos.training.trainer import Trainer

    whole = recipe(data, "qwen2", checkpoint_every=1)
    train(whole, tmp_path / "once", progress=False)
    original, calls = Trainer._step, []

    def stop(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # instruct step 1: last.pt holds the state after instruct step 0
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_step", stop)
    with pytest.raises(KeyboardInterrupt):
        train(whole, tmp_path / "twice", progress=False)
    monkeypatch.setattr(Trainer, "_step", original)
    train(whole, tmp_path / "twice", progress=False)

    def losses(run):
        return [json.loads(x)["loss"] for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]

    assert losses("twice") == pytest.approx(losses("once"), rel=1e-5)
    a, b = (load_trained(tmp_path / run / "instruct")[0] for run in ("once", "twice"))
    for (name, x), (_, y) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(x, y, msg=name)
