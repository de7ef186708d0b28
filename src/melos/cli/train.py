"""`melos pretrain` and `melos adapt`: train an encoder as a recipe says."""

from __future__ import annotations

import argparse

from .options import add_allow_truncated, add_overrides, add_progress

HELP = """\
Train an encoder as a recipe says: stages (which parameters train, optimizer, warm-up + cosine
schedule restarted per stage, steps, accumulation, replay share), teachers, loss weights.
The objective follows the model:
  MERT (mert-*, official checkpoints)  EnCodec tokens + CQT; without an EnCodec checkpoint,
                                       --set teacher.acoustic=random-projection predicts BEST-RQ
                                       tokens of log-mel instead
  efficient encoders (branchformer-*,  random-projection-quantizer tokens (rpq: 400 ms waveform
  conformer-*)                         masking) + stacked-mel reconstruction; linear in clip
                                       length with SummaryMixing (*-sm-*)

OUT gets <stage>/ (the encoder, + heads.safetensors, + teacher.safetensors for a random-projection
teacher, which adapting from it reuses) after every stage,
final/ for the last, checkpoints/last.pt and metrics.jsonl (one row per optimizer step).
Rerunning the same command after an interruption resumes from the last checkpoint.

examples:
  melos adapt --recipe recipes/culturemert-95m.yaml --from ~/models/MERT-v1-95M \\
      --data cultures.jsonl --replay music4all.jsonl --out runs/culturemert
  melos pretrain --recipe recipes/mert-tiny-pretrain.yaml --data music.jsonl --out runs/tiny
  melos pretrain --recipe recipes/branchformer-sm-164m.yaml --data music.jsonl --out runs/brn-sm \\
      --device cuda
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    for name in ("pretrain", "adapt"):
        adapt = name == "adapt"
        p = commands.add_parser(
            name, formatter_class=argparse.RawDescriptionHelpFormatter,
            help="continually pre-train an encoder (two-stage CultureMERT recipe)" if adapt
            else "pre-train an encoder from scratch (MERT, Branchformer or Conformer)",
            description=HELP)
        p.add_argument("--recipe", required=True, help="recipe YAML, e.g. recipes/culturemert-95m.yaml")
        if adapt:
            p.add_argument("--from", dest="init", required=True,
                           help="encoder to adapt: a checkpoint directory (MERT-v1-95M, a melos output) or preset")
        p.add_argument("--data", required=True, help="training manifest (JSONL; `melos data scan` makes one)")
        p.add_argument("--replay", default=None, help="replay manifest (e.g. Western music) for stages with replay")
        p.add_argument("--out", required=True, help="output folder; rerun the same command to resume")
        add_overrides(p, "recipe field", "stages.0.steps=100")
        p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
        add_allow_truncated(p, "that part is trained on")
        add_progress(p)


def run(command: str, recipe: str, overrides: list[str], **kwargs) -> int:
    """`command` is pretrain or adapt: the parser gives adapt its --from (`init`)."""
    import logging

    from ..training.recipe import load_recipe
    from ..training.run import train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    final = train(load_recipe(recipe, overrides), **kwargs)
    print(f"done: final encoder (official layout) and heads in {final}; per-step metrics in "
          f"{final.parent / 'metrics.jsonl'}")
    return 0
