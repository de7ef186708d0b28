"""`melos lm train | eval | demo`: a music-language model on any melos encoder."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from .options import add_overrides, add_progress

DESCRIPTION = """\
A music-language model: a melos encoder (MERT, a CultureMERT adaptation, a merged or efficient
encoder) read by a causal LM from a local Hugging Face folder (melos never downloads). The
encoder's hidden states (`layers`) are fused (learned softmax weights, concat or mean), mean-pooled
in time by `stride` frames, projected by a 2-layer MLP to the LM's width and written over audio
placeholder tokens in the prompt; long audio is encoded in 30 s chunks.

  train  stage `align` trains the projector (encoder and LM frozen) on captions; stage `instruct`
         adds LoRA on the LM (PEFT) on instructions; the loss is on answer tokens only and the
         encoder's features are cached once per clip. Recipes: recipes/lm-*.yaml, --set key=value.
  rows   training rows (JSONL) from MusicCaps, MusicQA, MusicInstruct or LP-MusicCaps files,
         leaving out a benchmark's clips (--exclude).
  eval   MuChoMusic's multiple-choice protocol (its prompt, letter parsing with an option-text
         fallback, unanswered = wrong) on questions from a local CSV/JSON, with
         --audio-ablation noise|silence|shuffle to measure how much the model listens;
         scored by generate-and-match and by option log-likelihood; --task caption scores
         generated captions (BLEU, ROUGE-L); --max-new-tokens sets the answer length.
  export a stage's trained weights merged into the LM: one self-contained model folder.
  demo   the whole path on a laptop: a synthetic corpus, captions and questions from its labels,
         a toy Qwen3-style LM with a tokenizer trained here, align + instruct, and accuracy against
         the noise-audio ablation with 95% intervals.
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("lm", help="train and evaluate a music-language model on a melos encoder",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    lm = p.add_subparsers(dest="lm_command", metavar="LM_COMMAND", required=True)

    q = lm.add_parser("train", help="align then instruction-tune (recipes/lm-*.yaml)",
                      description="Train a MusicLM from a recipe: stages, data (JSONL rows: audio, optional "
                                  "offset/duration, caption or turns), encoder, LM folder, layers, fusion, stride, "
                                  "LoRA, chat_template (the tokenizer's, where it has one; false: melos's plain "
                                  "prompt). Resumes from OUT/checkpoints/last.pt; writes OUT/<stage>/ (only the "
                                  "trained weights: connector, LoRA adapters in PEFT's layout; `melos lm export` "
                                  "merges them), metrics.jsonl, TensorBoard.")
    q.add_argument("recipe", help="a recipe YAML, e.g. recipes/lm-toy.yaml")
    q.add_argument("--out", required=True, help="run folder")
    add_overrides(q, "recipe value", "stages.0.steps=50")
    add_progress(q)

    q = lm.add_parser("rows", help="training rows (JSONL) from a dataset's files: MusicCaps, MusicQA, ...",
                      description="Write the JSONL rows `melos lm train` reads from a dataset as distributed: "
                                  "musiccaps (musiccaps-public.csv; clips named {ytid}.wav under --audio-root), "
                                  "musicqa (MU-LLaMA's MusicQA JSON), musicinstruct (MusiLingo's Music-Instruct "
                                  "JSON), lp-musiccaps (LP-MusicCaps JSON/JSONL/CSV). Rows whose audio is missing "
                                  "are reported; --skip-missing leaves them out.")
    q.add_argument("dataset", choices=["musiccaps", "musicqa", "musicinstruct", "lp-musiccaps"])
    q.add_argument("path", help="the dataset's metadata file")
    q.add_argument("--audio-root", required=True, help="folder holding the dataset's audio")
    q.add_argument("--out", required=True, help="JSONL file to write")
    q.add_argument("--split", default=None, help="keep one split (train, valid or test) where the dataset says")
    q.add_argument("--skip-missing", action="store_true", help="leave out rows whose audio file is missing")
    q.add_argument("--exclude", default=None,
                   help="a MuChoMusic CSV/JSON: rows on its clips are left out (MusicQA and MusicInstruct are built "
                        "on MusicCaps, whose clips the benchmark uses)")

    q = lm.add_parser("eval", help="MuChoMusic-style multiple choice, with audio ablations",
                      description="Answer multiple-choice questions (MuChoMusic's CSV/JSON, or the demo's JSON) "
                                  "with a trained model and score them MuChoMusic's way: accuracy, instruction-"
                                  "following rate, per category, with 95% bootstrap intervals. Each "
                                  "--audio-ablation repeats the questions with the audio replaced and reports "
                                  "the accuracy drop (paired interval): a model that does not drop does not listen.")
    q.add_argument("model", help="a folder `melos lm train` wrote (OUT/<stage>)")
    q.add_argument("questions", help="MuChoMusic CSV/JSON (local file); with --task caption, JSONL rows whose first "
                                     "answer is the reference caption")
    q.add_argument("--task", choices=["muchomusic", "caption"], default="muchomusic",
                   help="muchomusic: multiple choice (default); caption: generate captions, score BLEU (sacrebleu "
                        "corpus BLEU-4, 13a tokens) and ROUGE-L (rouge-score, stemmed F-measure)")
    q.add_argument("--audio-root", default=None, help="folder relative audio paths start from")
    q.add_argument("--audio-ablation", action="append", default=[], choices=["noise", "silence", "shuffle"],
                   help="also answer with the audio replaced (repeatable)")
    q.add_argument("--out", default=None, help="write results.json here (default: print only)")
    q.add_argument("--batch-size", type=int, default=8)
    q.add_argument("--max-new-tokens", type=int, default=None,
                   help="longest generated answer in tokens (default: 16 for muchomusic, 64 for caption)")
    q.add_argument("--no-likelihood", dest="likelihood", action="store_false",
                   help="muchomusic: skip log-likelihood scoring (by default each option's mean log-probability "
                        "as the answer is also ranked and reported beside generate-and-match)")
    q.add_argument("--lm", default=None, help="the base LM folder, if it moved since training (the model folder "
                                              "holds only the trained weights)")
    q.add_argument("--coco", action="store_true",
                   help="caption: also the COCO metrics of the captioning papers (pycocoevalcap): BLEU-1..4, "
                        "METEOR (needs Java), ROUGE-L, CIDEr-D")
    q.add_argument("--no-meteor", dest="meteor", action="store_false", help="with --coco: leave METEOR out")
    q.add_argument("--bertscore-model", default=None,
                   help="caption: BERTScore F1 with this local model folder (bert_score package; nothing downloads)")
    q.add_argument("--bertscore-layer", type=int, default=None, help="the layer BERTScore compares (per model)")
    q.add_argument("--seed", type=int, default=0, help="option shuffling, noise and bootstrap seed")
    q.add_argument("--feature-cache", default="cache/lm-features", help="cache of the encoder's pooled features")
    add_progress(q)

    q = lm.add_parser("export", help="merge a stage's LoRA adapters into the LM: one self-contained folder",
                      description="A stage folder holds only the trained weights (connector, LoRA adapters in "
                                  "PEFT's layout) and reads the base LM from where it was at training. Export "
                                  "merges the adapters into a copy of the LM and writes everything to OUT "
                                  "(MusicLM.from_pretrained reads it; as large as the LM).")
    q.add_argument("model", help="a folder `melos lm train` wrote (OUT/<stage>)")
    q.add_argument("--out", required=True, help="folder to write")
    q.add_argument("--lm", default=None, help="the base LM folder, if it moved since training")

    q = lm.add_parser("demo", help="the laptop demonstration: toy LM on synthetic music, does it listen?",
                      description="Synthetic corpus -> captions and multiple-choice questions from the labels -> "
                                  "a toy LM (tokenizer trained here, short text pre-training) -> align + instruct "
                                  "on ENCODER -> accuracy on held-out clips vs the same model with noise audio, "
                                  "per question type, with 95% intervals. About 10 minutes on 2 CPU cores.")
    q.add_argument("--out", required=True, help="folder for everything the demo writes (resumable)")
    q.add_argument("--encoder", default="quickstart/runs/multi/final",
                   help="encoder source (default: the quickstart's multi-tradition encoder; any source "
                        "melos.load_encoder reads, e.g. the preset mert-tiny)")
    q.add_argument("--recipe", default=None, help="recipe to train with (default: recipes/lm-toy.yaml)")
    add_overrides(q, "recipe value", "stages.1.steps=100")
    add_progress(q)


def run(lm_command: str, **kwargs) -> int:
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # weight-loading bars and notices; melos reports its own progress
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)  # peft
    return {"train": train, "rows": rows, "eval": evaluate, "export": export, "demo": demo}[lm_command](**kwargs)


def train(recipe: str, out: str, overrides: list[str], progress: bool) -> int:
    from ..lm.training import load_recipe, train as run_train

    folder = run_train(load_recipe(recipe, overrides), out, progress=progress)
    print(f"model -> {folder}")
    return 0


def rows(dataset: str, path: str, audio_root: str, out: str, split: str | None, skip_missing: bool,
         exclude: str | None) -> int:
    from ..lm.muchomusic import read_questions
    from ..lm.readers import READERS
    from ..lm.rows import check_audio, write_rows

    found = READERS[dataset](path, audio_root, split=split, skip_missing=skip_missing)
    dropped = 0
    if exclude:
        clips = {clip_key(q.audio) for q in read_questions(exclude, audio_root)}
        kept = [r for r in found if clip_key(r.audio) not in clips]
        dropped, found = len(found) - len(kept), kept
    missing = check_audio(found)
    write_rows(found, out)
    print(f"{len(found)} rows -> {out}" + (f" ({dropped} on the excluded benchmark's clips left out)" if exclude else "")
          + (f"; {len(missing)} have no audio file yet, e.g. {missing[0]}" if missing else ""))
    return 0


def clip_key(path: str) -> str:
    """A clip's YouTube id where its file name has one ("[ytid]-[30-40].wav" or "ytid.wav"), else its stem."""
    stem = Path(path).stem
    match = re.fullmatch(r"\[(.+)\]-\[[\d.]+-[\d.]+\]", stem)
    return match.group(1) if match else stem


def evaluate(model: str, questions: str, task: str, audio_root: str | None, audio_ablation: list[str],
             out: str | None, batch_size: int, seed: int, feature_cache: str, progress: bool,
             max_new_tokens: int | None = None, likelihood: bool = True, lm: str | None = None,
             coco: bool = False, meteor: bool = True, bertscore_model: str | None = None,
             bertscore_layer: int | None = None) -> int:
    from ..lm.caption_metrics import MissingMetric
    from ..lm.report import caption_model, evaluate_model, summary_lines
    from ..utils.atomic import write_text

    if max_new_tokens is not None and max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be at least 1, got {max_new_tokens}")
    if task == "caption":
        if audio_ablation:
            raise ValueError("--audio-ablation applies to --task muchomusic")
        try:
            results = caption_model(model, questions, audio_root, batch_size, feature_cache, progress,
                                    max_new_tokens or 64, lm, coco, meteor, bertscore_model, bertscore_layer)
        except MissingMetric as error:  # a user error (no Java, no package, no model folder): one line
            raise ValueError(str(error)) from None
        print(f"{results['n']} captions: BLEU {results['bleu']:.2f}, ROUGE-L {results['rouge_l']:.3f}"
              + "".join(f", {k} {v:.3f}" for k, v in results.get("coco", {}).items())
              + (f", BERTScore {results['bertscore']:.3f}" if "bertscore" in results else ""))
        for name, definition in results["definitions"].items():
            print(f"  {name}: {definition}")
    else:
        results = evaluate_model(model, questions, audio_root, ["none", *audio_ablation], batch_size, seed,
                                 feature_cache, progress, max_new_tokens or 16, likelihood, lm)
        print("\n".join(summary_lines(results)))
    if out:
        path = write_text(Path(out) / "results.json", json.dumps(results, indent=2))
        print(f"results -> {path}")
    return 0


def export(model: str, out: str, lm: str | None) -> int:
    from ..lm.checkpoint import export_merged

    print(f"merged model -> {export_merged(model, out, lm)}")
    return 0


def demo(out: str, encoder: str, recipe: str | None, overrides: list[str], progress: bool) -> int:
    from ..lm.demo import run_demo

    report = run_demo(out, encoder, recipe, overrides, progress)
    print(report.read_text())
    return 0
