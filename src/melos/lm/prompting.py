"""Prompts that interleave audio and text, as token ids, with the loss only on answers.

One conversation is rendered as

    User: {user text, where each <audio> becomes <|audio_start|> <|audio|> x N <|audio_end|>}
    Assistant: {answer}<eos>
    User: ...

Every text piece is tokenized on its own (no special-token handling inside text), so the audio
tokens are exactly where the markers were, N per audio (computed by the featurizer from the
audio's length). Labels are -100 everywhere except on the answers and their closing eos: the
model learns to answer, not to predict prompts or audio. The template is melos's own, the same
in training and evaluation, so it works for LMs with no chat template (the toy LM) as well as
for instruction-tuned ones.
"""

from __future__ import annotations

import torch

AUDIO_MARKER = "<audio>"
USER, ASSISTANT = "User: ", "\nAssistant: "
IGNORE = -100


def encode_conversation(tokenizer, turns: list[tuple[str, str | None]], audio_tokens: list[int],
                        audio_ids: dict[str, int]) -> tuple[list[int], list[int]]:
    """Token ids and labels of a conversation.

    Args:
        tokenizer: the LM's tokenizer (with the audio tokens added, see `MusicLM.from_parts`).
        turns: (user, answer) pairs; the last answer may be None (a prompt to generate from).
        audio_tokens: placeholder count per audio, in the order their markers appear.
        audio_ids: the ids of the audio start, placeholder and end tokens ("start", "audio", "end").

    Raises:
        ValueError: the markers and `audio_tokens` differ in number.
    """
    markers = sum(user.count(AUDIO_MARKER) for user, _ in turns)
    if markers != len(audio_tokens):
        raise ValueError(f"the prompt has {markers} {AUDIO_MARKER} markers but {len(audio_tokens)} audios were given")
    ids: list[int] = []
    labels: list[int] = []
    audios = iter(audio_tokens)

    def text(piece: str, learn: bool = False) -> None:
        pieces = tokenizer(piece, add_special_tokens=False)["input_ids"] if piece else []
        ids.extend(pieces)
        labels.extend(pieces if learn else [IGNORE] * len(pieces))

    for index, (user, answer) in enumerate(turns):
        parts = user.split(AUDIO_MARKER)
        text(("\n" if index else "") + USER + parts[0])
        for part in parts[1:]:
            audio = [audio_ids["start"]] + [audio_ids["audio"]] * next(audios) + [audio_ids["end"]]
            ids.extend(audio)
            labels.extend([IGNORE] * len(audio))
            text(part)
        text(ASSISTANT)
        if answer is not None:
            text(answer, learn=True)
            ids.append(tokenizer.eos_token_id)
            labels.append(tokenizer.eos_token_id)
        elif index != len(turns) - 1:
            raise ValueError("only the last turn may be without an answer")
    return ids, labels


def pad(sequences: list[list[int]], value: int, left: bool = False) -> torch.Tensor:
    """[B, S_max] tensor of `sequences` padded with `value` on the right (or the left, for generation)."""
    width = max(len(s) for s in sequences)
    rows = [([value] * (width - len(s)) + s) if left else (s + [value] * (width - len(s))) for s in sequences]
    return torch.tensor(rows, dtype=torch.long)


def collate(examples: list[tuple[list[int], list[int]]], pad_id: int, left: bool = False) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask and labels of a batch of (ids, labels)."""
    ids = [e[0] for e in examples]
    return {"input_ids": pad(ids, pad_id, left), "attention_mask": pad([[1] * len(i) for i in ids], 0, left),
            "labels": pad([e[1] for e in examples], IGNORE, left)}
