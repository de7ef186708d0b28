"""A small causal LM and its tokenizer, made here, for the laptop demonstration and the tests.

The tokenizer is a byte-level BPE trained with the `tokenizers` library on the texts it will see;
the LM is a Qwen3-style decoder built from a config (random weights) and given a short text
pre-training by `melos lm train` (stage `text`), so that, as with a real LM, the language is
known before audio is connected. Both are written as an ordinary Hugging Face folder, so the
demonstration goes through the same loading path as a real LM on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..utils.atomic import atomic_dir
from .prompting import encode_conversation

SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>"]


@dataclass
class ToyLMConfig:
    """Size of the toy LM (Qwen3 architecture)."""

    vocab_size: int = 1024
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 384
    max_positions: int = 1024


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE `PreTrainedTokenizerFast` trained on `texts`, with pad and eos tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<|pad|>", eos_token="<|endoftext|>")


def write_toy_lm(out: str | Path, texts: list[str], config: ToyLMConfig = ToyLMConfig(), seed: int = 0,
                 conversations: list[list[tuple[str, str]]] = (), steps: int = 0, batch_size: int = 16,
                 lr: float = 2e-3, progress: bool = False) -> Path:
    """Train a tokenizer on `texts`, build a Qwen3-style LM for it, pre-train it for `steps` on
    `conversations` ((user, answer) turns without audio), and write both to `out` (appears only
    once complete); returns `out`.

    The conversations are tokenized exactly as `melos lm train` will tokenize them
    (`prompting.encode_conversation`: each piece on its own), so the LM learns the token
    sequences it will meet, not those of the joined text, whose BPE merges differ at the seams."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = train_tokenizer(texts, config.vocab_size)
    torch.manual_seed(seed)
    lm = Qwen3ForCausalLM(Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=config.hidden_size, intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers, num_attention_heads=config.heads, num_key_value_heads=config.kv_heads,
        head_dim=config.hidden_size // config.heads, max_position_embeddings=config.max_positions,
        tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id))
    if steps:
        sequences = [encode_conversation(tokenizer, turns, [], {})[0] for turns in conversations]
        pretrain(lm, tokenizer, sequences, steps, batch_size, lr, seed, progress)
    with atomic_dir(out) as folder:
        lm.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    return Path(out)


def pretrain(lm, tokenizer, sequences: list[list[int]], steps: int, batch_size: int, lr: float, seed: int,
             progress: bool = False) -> list[float]:
    """Next-token training of `lm` on random batches of token `sequences` (AdamW, linear decay);
    returns the losses."""
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    if not sequences:
        raise ValueError("text pre-training needs at least one conversation")
    encoded = sequences
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(lm.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / steps)
    losses = []
    lm.train()
    for _ in tqdm(range(steps), desc="text pre-training", disable=not progress, dynamic_ncols=True):
        rows = [encoded[i] for i in rng.integers(0, len(encoded), batch_size)]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        loss = lm(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    lm.eval()
    return losses
