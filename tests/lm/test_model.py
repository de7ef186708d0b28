"""The music-language model's mechanics on a toy LM and the tiny MERT: audio tokens, labels,
the connector, generation, save/load, and what each stage trains."""

import math

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from melos.lm.audio_features import CHUNK_SECONDS, AudioFeaturizer, pool
from melos.lm.model import MusicLM
from melos.lm.prompting import AUDIO_MARKER, IGNORE, encode_conversation
from melos.lm.toy import ToyLMConfig, write_toy_lm
from melos.models import load_encoder

TEXTS = ["a slow makam piece with oud and ney in 9/8", "a fast western piece with drums and bass in 4/4",
         "User: Which instrument can be heard?\nAssistant: (B) oud"] * 20
SMALL = ToyLMConfig(vocab_size=300, hidden_size=32, layers=2, heads=2, kv_heads=1, intermediate_size=64)


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    return write_toy_lm(tmp_path_factory.mktemp("lm") / "toy", TEXTS, SMALL)


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return load_encoder("mert-tiny")


@pytest.fixture()
def built(lm_dir, encoder):
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    return MusicLM.from_parts(encoder, lm_dir, tokenizer, layers=[0, 2], stride=4), tokenizer


def test_pool_averages_groups_and_a_short_last_group():
    x = torch.arange(10, dtype=torch.float32).reshape(1, 10, 1)
    np.testing.assert_allclose(pool(x, 4)[0, :, 0].numpy(), [1.5, 5.5, 8.5])  # (0..3), (4..7), (8, 9)
    assert torch.equal(pool(x, 1), x)


def test_token_count_matches_the_features_across_chunks(encoder):
    featurizer = AudioFeaturizer(encoder, [0, 1], stride=3, max_seconds=100)
    rate = encoder.sample_rate
    for seconds in (0.05, 1.0, CHUNK_SECONDS, CHUNK_SECONDS + 1.3):
        n = round(seconds * rate)
        features = featurizer.features(np.random.default_rng(0).standard_normal(n).astype(np.float32), rate)
        assert features.shape[0] == 2 and features.shape[1] == featurizer.n_tokens(n)
    one = math.ceil(encoder.n_frames(round(CHUNK_SECONDS * rate)) / 3)
    assert featurizer.n_tokens(round(2 * CHUNK_SECONDS * rate)) == 2 * one  # each 30 s chunk pooled on its own
    with pytest.raises(ValueError, match="longer than the configured maximum"):
        featurizer.features(np.zeros(101 * rate, np.float32), rate, name="long.wav")


def test_prompt_tokens_interleave_audio_and_mask_all_but_answers(built):
    model, tokenizer = built
    ids_of = model.config.audio_token_ids
    turns = [(f"{AUDIO_MARKER} first, then {AUDIO_MARKER} second?", "the oud"), ("and now?", "drums")]
    ids, labels = encode_conversation(tokenizer, turns, [3, 5], ids_of)
    placeholders = [i for i, t in enumerate(ids) if t == ids_of["audio"]]
    assert len(placeholders) == 8
    starts = [i for i, t in enumerate(ids) if t == ids_of["start"]]
    assert [ids[s + 1:s + 4] for s in starts[:1]] == [[ids_of["audio"]] * 3] and ids[starts[0] + 4] == ids_of["end"]
    assert ids[starts[1] + 6] == ids_of["end"] and len(starts) == 2
    learned = tokenizer.decode([t for t, lab in zip(ids, labels) if lab != IGNORE])
    assert learned == "the oud<|endoftext|>drums<|endoftext|>"
    assert all(labels[i] == IGNORE for i in placeholders)
    with pytest.raises(ValueError, match="2 <audio> markers but 1 audios"):
        encode_conversation(tokenizer, turns, [3], ids_of)


def test_features_replace_exactly_the_placeholders(built):
    model, tokenizer = built
    features = [torch.randn(2, 3, model.config.encoder_hidden_size)]
    ids, _ = encode_conversation(tokenizer, [(f"hear {AUDIO_MARKER} now", None)], [3], model.config.audio_token_ids)
    ids = torch.tensor([ids])
    embeds = model.embed(ids, features)
    plain = model.get_input_embeddings()(ids)
    slots = ids[0] == model.config.audio_token_ids["audio"]
    torch.testing.assert_close(embeds[0, slots], model.connector(features[0]))
    torch.testing.assert_close(embeds[0, ~slots], plain[0, ~slots])
    with pytest.raises(ValueError, match="3 audio placeholder tokens but the audio gives 4"):
        model.embed(ids, [torch.randn(2, 4, model.config.encoder_hidden_size)])


def test_weighted_fusion_starts_as_the_mean_and_concat_widens(built):
    model, _ = built
    x = torch.randn(2, 5, model.config.encoder_hidden_size)
    mean = model.connector.projector(x.mean(0))
    torch.testing.assert_close(model.connector(x), mean)
    concat = MusicLM(model.config.__class__(**{**model.config.to_dict(), "fusion": "concat"}))
    assert concat.connector.projector[0].in_features == 2 * model.config.encoder_hidden_size


def test_a_text_only_prompt_generates_what_the_bare_lm_generates(built, lm_dir):
    model, tokenizer = built
    bare = AutoModelForCausalLM.from_pretrained(lm_dir)
    bare.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    bare.load_state_dict(model.lm.state_dict())
    prompts = ["a slow makam", "User: Which instrument can be heard?\nAssistant:"]
    for text in prompts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        expected = bare.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        got = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        assert torch.equal(got[0], expected[0, ids.shape[1]:])


def test_save_and_load_round_trip(built, tmp_path):
    model, tokenizer = built
    model.save_pretrained(tmp_path / "m")
    back = MusicLM.from_pretrained(tmp_path / "m")
    assert back.config.encoder == model.config.encoder and back.config.layers == [0, 2]
    features = [torch.randn(2, 3, model.config.encoder_hidden_size)]
    ids, _ = encode_conversation(tokenizer, [(f"{AUDIO_MARKER} what?", None)], [3], model.config.audio_token_ids)
    ids = torch.tensor([ids])
    torch.testing.assert_close(back(ids, audio_features=features).logits, model(ids, audio_features=features).logits)


def test_gradient_checkpointing_gives_the_same_gradients(built):
    model, tokenizer = built
    features = [torch.randn(2, 3, model.config.encoder_hidden_size)]
    ids, labels = encode_conversation(tokenizer, [(f"{AUDIO_MARKER} what?", "a hum")], [3],
                                      model.config.audio_token_ids)
    ids, labels = torch.tensor([ids]), torch.tensor([labels])

    def grads() -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        model(ids, labels=labels, audio_features=features).loss.backward()
        return [p.grad.clone() for p in model.connector.parameters()]

    model.train()
    plain = grads()
    model.gradient_checkpointing_enable()
    for a, b in zip(plain, grads()):
        torch.testing.assert_close(a, b)


def test_the_hugging_face_trainer_trains_it(built, tmp_path):
    """`transformers.Trainer` with an audio collator (TRL's SFTTrainer has none) trains the connector."""
    from transformers import Trainer, TrainingArguments

    from melos.lm.prompting import collate

    model, tokenizer = built
    features = torch.randn(2, 3, model.config.encoder_hidden_size)
    ids, labels = encode_conversation(tokenizer, [(f"{AUDIO_MARKER} what?", "a hum")], [3],
                                      model.config.audio_token_ids)

    def collator(rows: list[dict]) -> dict:
        batch = collate([(r["ids"], r["labels"]) for r in rows], tokenizer.pad_token_id)
        return {**batch, "audio_features": [r["features"] for r in rows]}

    args = TrainingArguments(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-2,
                             report_to=[], use_cpu=True, save_strategy="no", remove_unused_columns=False,
                             disable_tqdm=True)
    before = model.connector.projector[0].weight.detach().clone()
    Trainer(model=model, args=args, train_dataset=[{"ids": ids, "labels": labels, "features": features}] * 4,
            data_collator=collator).train()
    assert not torch.equal(before, model.connector.projector[0].weight)
