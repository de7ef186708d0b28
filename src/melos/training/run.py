"""`melos pretrain` and `melos adapt`: build encoder, heads, teachers and data from a recipe, train.

Output layout of DIR:
    DIR/<stage>/        encoder (MERT: the official layout; efficient encoders: melos's) + heads.safetensors
                        (+ teacher.safetensors for a random-projection teacher, whose fitted statistics
                        continual pre-training reuses)
    DIR/final/          the same for the last stage
    DIR/checkpoints/    last.pt, for resuming (rerun the same command)
    DIR/metrics.jsonl   one row per optimizer step

The objective follows the encoder: MERT models train with the MERT objective (acoustic tokens +
CQT), efficient encoders (Branchformer/Conformer) with the random-projection-quantizer objective.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file

from ..audio import AudioError, load
from ..data.crops import CropBatcher, CropSource, take_hours
from ..data.manifest import ManifestRow, fill_durations, read_manifest
from ..evaluation.monitor import probe_monitor
from ..models import Encoder, load_encoder
from ..models.efficient import EfficientEncoder
from ..models.hf_layout import load_state_dict_strict
from ..objectives.mert_loss import MERTHeads
from ..objectives.mert_objective import MERTObjective, MERTObjectiveConfig
from ..objectives.rpq_objective import RPQHeads, RPQObjective
from ..teachers.cqt import CQT
from ..teachers.encodec_tokens import EncodecTokenizer
from ..teachers.random_projection import MelTokenizer, RandomProjectionTokenizer
from ..utils.atomic import atomic_dir
from .recipe import Recipe, RecipeStage, TeacherSpec
from .trainer import Stage, Trainer, join_torchrun

log = logging.getLogger(__name__)
HEADS = "heads.safetensors"
TEACHER = "teacher.safetensors"
STATS_CLIPS = 64  # clips whose log-mel frames fit a random-projection teacher's statistics

Tokenizer = EncodecTokenizer | RandomProjectionTokenizer | MelTokenizer
Heads = MERTHeads | RPQHeads


def acoustic_teacher(spec: TeacherSpec, seed: int, source: str | Path, rows: list[ManifestRow],
                     allow_truncated: bool = False) -> Tokenizer:
    """The MERT objective's acoustic teacher: EnCodec, or random projections (see `fitted_teacher`)."""
    if spec.acoustic == "encodec":
        return (EncodecTokenizer.tiny(seed) if spec.encodec == "tiny"
                else EncodecTokenizer.from_pretrained(Path(spec.encodec).expanduser(), spec.bandwidth))
    if spec.acoustic != "random-projection":
        raise ValueError(f"teacher.acoustic: {spec.acoustic!r} is not 'encodec' or 'random-projection'")
    return fitted_teacher(RandomProjectionTokenizer(spec.codebooks, spec.codebook_size, seed=seed), seed, source, rows,
                          allow_truncated)


def fitted_teacher(teacher: RandomProjectionTokenizer | MelTokenizer, seed: int, source: str | Path,
                   rows: list[ManifestRow], allow_truncated: bool = False) -> RandomProjectionTokenizer | MelTokenizer:
    """A random-projection teacher saved beside `source` is reused as it is (continual
    pre-training keeps its teacher); otherwise its statistics are fitted on up to STATS_CLIPS
    clips of `rows`, picked by `seed` (with `allow_truncated`, what decodes of a truncated one)."""
    file = Path(source) / TEACHER
    if file.is_file():
        load_state_dict_strict(teacher, load_file(file), file)
        return teacher
    picks = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:STATS_CLIPS].tolist()
    errors = []

    def clips():
        for i in picks:
            try:
                yield load(rows[i].path, teacher.sample_rate, allow_truncated=allow_truncated)[None]
            except AudioError as err:
                errors.append(str(err))
                log.warning("teacher statistics: skipped %s", err)

    try:
        teacher.fit_stats(clips())
    except ValueError:
        raise ValueError(f"random-projection teacher: none of the {len(picks)} training clips it picked to fit its "
                         f"statistics could be read (first: {errors[0] if errors else 'no clips'}); "
                         "check the --data manifest") from None
    return teacher


def load_heads(source: str | Path, heads: Heads) -> bool:
    """Fill `heads` from the heads.safetensors saved beside a melos-trained encoder; False if there is
    none (official checkpoints have none)."""
    file = Path(source) / HEADS
    if not file.is_file():
        return False
    load_state_dict_strict(heads, load_file(file), file)
    return True


def save_stage(encoder: Encoder, heads: Heads, teacher: Tokenizer, directory: Path) -> None:
    """Encoder, heads and a random-projection teacher; the directory appears only when complete."""
    files = {HEADS: heads} | ({} if isinstance(teacher, EncodecTokenizer) else {TEACHER: teacher})
    with atomic_dir(directory) as folder:
        encoder.write_files(folder)
        for name, module in files.items():
            save_file({k: v.detach().contiguous() for k, v in module.state_dict().items()}, folder / name)


def build_objective(recipe: Recipe, encoder: Encoder, source: str | Path, rows: list[ManifestRow],
                    allow_truncated: bool = False) -> tuple[RPQObjective | MERTObjective, Heads, Tokenizer]:
    """The objective the encoder trains with, its (fresh) heads and its frozen teacher (a
    random-projection teacher not saved beside `source` is fitted on clips of `rows`)."""
    if isinstance(encoder, EfficientEncoder):
        teacher = fitted_teacher(MelTokenizer(codebook_size=recipe.teacher.codebook_size, seed=recipe.seed),
                                 recipe.seed, source, rows, allow_truncated)
        heads = RPQHeads(encoder.hidden_size, teacher.quantizer.codebook_size, teacher.quantizer.input_dim)
        return RPQObjective(encoder, heads, teacher, recipe.rpq), heads, teacher
    encoder.feature_grad_mult = recipe.feature_grad_mult
    codec = acoustic_teacher(recipe.teacher, recipe.seed, source, rows, allow_truncated)
    spec = recipe.objective
    heads = MERTHeads(encoder.hidden_size, codec.n_codebooks, codec.codebook_size, spec.final_dim)
    objective = MERTObjective(encoder, heads, codec, CQT(), MERTObjectiveConfig(
        spec.mask_prob, spec.mask_span, spec.temperature, spec.weights, spec.n_predicted_codebooks,
        spec.mixture_prob, spec.mixture_samples))
    return objective, heads, codec


def training_rows(manifest: str | Path, progress: bool = True, allow_truncated: bool = False) -> list[ManifestRow]:
    """A manifest's rows with their durations, read from the file headers where a row has none
    (a hand-written list of paths); unreadable files are logged by name and left out."""
    rows, failed = fill_durations(read_manifest(manifest), progress, allow_truncated)
    for path, reason in failed.items():
        log.warning("%s: skipped, %s", path, reason)
    if failed:
        log.warning("%s: %d of %d files cannot be read and are left out", manifest, len(failed), len(rows) + len(failed))
    return rows


def train(recipe: Recipe, data: str | Path, out: str | Path, init: str | None = None,
          replay: str | Path | None = None, device: str = "cpu", progress: bool = True,
          allow_truncated: bool = False) -> Path:
    """Train as the recipe says, starting from `init` (else `recipe.model`). Returns DIR/final.
    `allow_truncated` trains on what decodes of files cut short (each logged once) instead of
    leaving them out."""
    out = Path(out)
    device = join_torchrun(device)
    torch.manual_seed(recipe.seed)
    source = init or recipe.model
    encoder = load_encoder(source, seed=None)  # a preset's weights follow the recipe's seed
    rows = training_rows(data, progress, allow_truncated)
    stats_rows = read_manifest(Path(recipe.teacher.statistics).expanduser()) if recipe.teacher.statistics else rows
    objective, heads, codec = build_objective(recipe, encoder, source, stats_rows, allow_truncated)
    stages = [dataclasses.replace(s) for s in recipe.stages]
    if not load_heads(source, heads):
        log.warning("no %s beside %s: pre-training heads created fresh%s", HEADS, source,
                    "; the first stage trains all of them" if recipe.train_fresh_heads else "")
        if recipe.train_fresh_heads and stages and "heads.*" not in stages[0].trainable:
            stages[0].trainable = [*stages[0].trainable, "heads.*"]
    replay_rows = training_rows(replay, progress, allow_truncated) if replay else None

    def batches(stage: Stage) -> CropBatcher:
        assert isinstance(stage, RecipeStage)
        sources = {}
        for row in rows:
            sources.setdefault(row.culture or row.source or "data", []).append(row)
        if stage.hours is not None:
            per_source = stage.hours / len(sources)
            sources = {k: take_hours(v, per_source, recipe.seed) for k, v in sources.items()}
        hours = {k: sum(r.duration or 0 for r in v) for k, v in sources.items()}
        use_replay = stage.replay_fraction > 0
        if use_replay and replay_rows is None:
            raise ValueError(f"stage {stage.name!r} uses {stage.replay_fraction:.0%} replay: pass --replay MANIFEST")
        return CropBatcher([CropSource(k, v, hours[k]) for k, v in sources.items()], recipe.crop_seconds,
                           encoder.sample_rate, CropSource("replay", replay_rows) if use_replay else None,
                           stage.replay_fraction, recipe.seed, allow_truncated)

    def on_stage_end(stage: Stage, directory: Path) -> None:
        save_stage(encoder, heads, codec, directory)
        log.info("stage %s done: %s", stage.name, directory)

    spec = recipe.monitor
    monitor = probe_monitor(spec.task, encoder, device, spec.epochs, spec.seeds) if spec else None
    Trainer(objective, batches, stages, out, seed=recipe.seed, checkpoint_every=recipe.checkpoint_every,
            device=device, precision=recipe.precision, progress=progress, on_stage_end=on_stage_end,
            monitor=monitor, monitor_every=recipe.monitor.every if recipe.monitor else 0).run()
    final = out / "final"
    if dist.is_initialized() and dist.get_rank() != 0:
        return final
    with atomic_dir(final) as folder:
        shutil.copytree(out / stages[-1].name, folder, dirs_exist_ok=True)
    return final
