"""Prompts that interleave audio and text, as token ids, with the loss only on answers.

Without a chat template (the toy LM, base LMs) one conversation is rendered as melos's own

    User: {user text, where each <audio> becomes <|audio_start|> <|audio|> x N <|audio_end|>}
    Assistant: {answer}<eos>
    User: ...

With one (instruct LMs; `chat_template=True`) the tokenizer's template renders the messages, and
the text is cut where the template puts each answer: the rendering with the generation prompt
must be a prefix of the rendering with the answer, so the answer and its closing (end-of-turn
tokens) are the difference. Either way every text piece is tokenized on its own (special tokens
written by the template are matched as such), so the audio tokens are exactly where the markers
were, N per audio (computed by the featurizer from the audio's length). Labels are -100
everywhere except on the answers and their closing: the model learns to answer and to stop, not
to predict prompts or audio. Training and evaluation build prompts here alike.
"""

from __future__ import annotations

import torch

AUDIO_MARKER = "<audio>"
USER, ASSISTANT = "User: ", "\nAssistant: "
IGNORE = -100
PROMPT, ANSWER, CLOSING = "prompt", "answer", "closing"


def has_chat_template(tokenizer) -> bool:
    """Whether `tokenizer` carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def encode_conversation(tokenizer, turns: list[tuple[str, str | None]], audio_tokens: list[int],
                        audio_ids: dict[str, int], chat_template: bool = False,
                        learn_closing: bool = True) -> tuple[list[int], list[int]]:
    """Token ids and labels of a conversation.

    Args:
        tokenizer: the LM's tokenizer (with the audio tokens added, see `MusicLM.from_parts`).
        turns: (user, answer) pairs; the last answer may be None (a prompt to generate from).
        audio_tokens: placeholder count per audio, in the order their markers appear.
        audio_ids: the ids of the audio start, placeholder and end tokens ("start", "audio", "end").
        chat_template: render with the tokenizer's chat template instead of melos's plain one.
        learn_closing: label the closing after each answer (eos, or the template's end of turn)
            too; False labels the answer text only (log-likelihood scoring of an option's text).

    Raises:
        ValueError: the markers and `audio_tokens` differ in number, or the template cannot be cut.
    """
    markers = sum(user.count(AUDIO_MARKER) for user, _ in turns)
    if markers != len(audio_tokens):
        raise ValueError(f"the prompt has {markers} {AUDIO_MARKER} markers but {len(audio_tokens)} audios were given")
    if any(answer is None for _, answer in turns[:-1]):
        raise ValueError("only the last turn may be without an answer")
    pieces = _template_pieces(tokenizer, turns) if chat_template else _plain_pieces(tokenizer, turns)
    ids: list[int] = []
    labels: list[int] = []
    audios = iter(audio_tokens)

    def add(new: list[int], learn: bool) -> None:
        ids.extend(new)
        labels.extend(new if learn else [IGNORE] * len(new))

    for piece, role in pieces:
        if isinstance(piece, list):  # token ids (the plain template's eos)
            add(piece, role == ANSWER or (role == CLOSING and learn_closing))
            continue
        parts = piece.split(AUDIO_MARKER) if role == PROMPT else [piece]
        for k, part in enumerate(parts):
            if k:
                add([audio_ids["start"]] + [audio_ids["audio"]] * next(audios) + [audio_ids["end"]], False)
            if part:
                add(tokenizer(part, add_special_tokens=False)["input_ids"],
                    role == ANSWER or (role == CLOSING and learn_closing))
    return ids, labels


def _plain_pieces(tokenizer, turns: list[tuple[str, str | None]]) -> list[tuple[str | list[int], str]]:
    pieces: list[tuple[str | list[int], str]] = []
    for index, (user, answer) in enumerate(turns):
        pieces += [(("\n" if index else "") + USER + user, PROMPT), (ASSISTANT, PROMPT)]
        if answer is not None:
            pieces += [(answer, ANSWER), ([tokenizer.eos_token_id], CLOSING)]
    return pieces


def _template_pieces(tokenizer, turns: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    """The chat template's text cut into prompt, answer and closing pieces."""
    def render(messages: list[dict], generation: bool) -> str:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)

    def cut(error: str) -> ValueError:
        return ValueError(f"the tokenizer's chat template {error}; set chat_template: false in the recipe to use "
                          "melos's plain prompt")

    pieces: list[tuple[str, str]] = []
    messages: list[dict] = []
    done = ""
    for user, answer in turns:
        messages.append({"role": "user", "content": user})
        asked = render(messages, True)
        if not asked.startswith(done):
            raise cut("renders an earlier turn differently once a later one follows")
        pieces.append((asked[len(done):], PROMPT))
        if answer is None:
            break
        messages.append({"role": "assistant", "content": answer})
        done = render(messages, False)
        if not done.startswith(asked):
            raise cut("does not continue its generation prompt with the answer")
        tail = done[len(asked):]
        text = answer if answer in tail else answer.strip()
        at = tail.find(text) if text else -1
        if at < 0:
            raise cut(f"does not write the answer {answer[:40]!r} verbatim")
        pieces += [(tail[:at], PROMPT), (text, ANSWER), (tail[at + len(text):], CLOSING)]
    return [(text, role) for text, role in pieces if text]


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
