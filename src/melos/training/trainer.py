"""One small trainer for pre-training and continual pre-training; stages are data.

A stage says which parameters train (name patterns), the optimizer settings, the schedule
(warm-up + cosine, restarted with a fresh optimizer at every stage: "re-warming"), the number
of optimizer steps, gradient accumulation and clipping. Batches, masks and mixtures are pure
functions of (seed, stage, step), so a checkpoint needs no data-loader state, and a resumed
run reproduces the losses of an uninterrupted one.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..utils.atomic import atomic_file
from .schedule import SCHEDULES

log = logging.getLogger(__name__)

PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Stage:
    """One training stage. `trainable` holds fnmatch patterns over the objective's parameter
    names (e.g. CultureMERT stage 1: ["encoder.feature_extractor.*", "heads.codewords"])."""

    name: str
    steps: int
    lr_max: float
    lr_min: float
    warmup_fraction: float = 0.1
    trainable: list[str] = field(default_factory=lambda: ["*"])
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.01
    batch_size: int = 4
    accumulation: int = 1
    clip: float = 1.0
    schedule: str = "cosine"  # or "linear" (decay), see training/schedule.py

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"stage {self.name!r}: schedule must be one of {', '.join(SCHEDULES)}")


def join_torchrun(device: str) -> str:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); returns the device this
    process trains on ("cuda" becomes "cuda:<LOCAL_RANK>")."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device == "cuda":
            device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


class Batches(Protocol):
    """Draws global batch `step`: audio [B, N] (or a dict of per-row lists with a "seconds" list,
    passed to the objective as is), and the rows' names."""

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor | dict[str, list], list[str]]: ...


class NonFiniteError(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""


class Trainer:
    """Runs `stages` in order on `objective` (a module whose forward(batch, generator, clip_seeds)
    returns a dict with "loss"), drawing data from `batches(stage)` (each stage has its own mix), writing `metrics.jsonl`, `checkpoints/last.pt` and, after each stage,
    `on_stage_end(stage, out_dir / stage.name)` (e.g. save the encoder in the official layout)."""

    def __init__(self, objective: nn.Module, batches: Callable[[Stage], Batches], stages: list[Stage],
                 out_dir: str | Path, *, seed: int = 0, checkpoint_every: int = 100, max_bad_steps: int = 10,
                 device: str = "cpu", precision: str = "float32", progress: bool = True,
                 on_stage_end: Callable[[Stage, Path], None] | None = None,
                 monitor: Callable[[], dict[str, float]] | None = None, monitor_every: int = 0):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.objective, self.batches, self.stages = objective, batches, stages
        self.out_dir, self.seed = Path(out_dir), seed
        self.checkpoint_every, self.max_bad_steps = checkpoint_every, max_bad_steps
        self.device, self.precision, self.progress = torch.device(device), precision, progress
        self.on_stage_end = on_stage_end
        # e.g. a small probe on a Western task every N steps, to watch the "stability gap"
        self.monitor, self.monitor_every = monitor, monitor_every
        self.checkpoint = self.out_dir / "checkpoints" / "last.pt"
        self.bad_in_a_row = 0
        # Distributed data parallel (torchrun): each process takes its slice of every global batch.
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.main = self.rank == 0
        objective.to(self.device)
        for teacher in getattr(objective, "teachers", ()):  # frozen, outside the module tree
            teacher.to(self.device)
        # fp16 needs loss scaling; bf16 has float32's range and does not.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=precision == "float16")

    def trainable(self, stage: Stage) -> list[nn.Parameter]:
        """Set requires_grad from the stage's patterns; returns the trainable parameters."""
        params = []
        for name, p in self.objective.named_parameters():
            p.requires_grad_(any(fnmatch.fnmatchcase(name, pat) for pat in stage.trainable))
            if p.requires_grad:
                params.append(p)
        if not params:
            raise ValueError(f"stage {stage.name!r}: no parameter matches {stage.trainable}")
        return params

    def run(self) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        for stage in self.stages:
            if stage.batch_size % self.world:
                raise ValueError(f"stage {stage.name!r}: batch_size {stage.batch_size} is not divisible by the "
                                 f"{self.world} processes")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        state = self._load_checkpoint()
        start_stage, start_step = (state["stage"], state["step"]) if state else (0, 0)
        offsets = [sum(s.steps for s in self.stages[:i]) for i in range(len(self.stages) + 1)]
        writer = SummaryWriter(self.out_dir / "tensorboard") if self.main else None
        bar = tqdm(total=offsets[-1], initial=offsets[start_stage] + start_step, desc="train", unit="step",
                   disable=not (self.progress and self.main), dynamic_ncols=True)
        metrics_path = self.out_dir / "metrics.jsonl" if self.main else Path(os.devnull)
        try:
            with open(metrics_path, "a" if state else "w") as metrics_file:
                for index in range(start_stage, len(self.stages)):
                    stage = self.stages[index]
                    params = self.trainable(stage)
                    batcher = self.batches(stage)
                    optimizer = torch.optim.AdamW(params, lr=stage.lr_max, betas=stage.betas, eps=stage.eps,
                                                  weight_decay=stage.weight_decay)
                    step = 0
                    if state and index == start_stage and state["optimizer"]:
                        optimizer.load_state_dict(state["optimizer"])
                        step = start_step
                    self.objective.train()
                    model = self.objective
                    if self.world > 1:  # rebuilt per stage: DDP records which parameters train
                        model = DistributedDataParallel(self.objective, find_unused_parameters=True)
                    while step < stage.steps:
                        row = self._step(index, stage, step, params, optimizer, batcher, model)
                        if self.monitor and self.monitor_every and (step + 1) % self.monitor_every == 0 and self.main:
                            row.update(self.monitor())
                            self.objective.train()
                        metrics_file.write(json.dumps(row) + "\n")
                        metrics_file.flush()
                        for key, value in row.items():
                            if writer is not None and isinstance(value, (int, float)) and key != "step":
                                writer.add_scalar(key, value, offsets[index] + step)
                        bar.update(1)
                        bar.set_postfix(stage=stage.name, loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}",
                                        refresh=False)
                        if self.bad_in_a_row >= self.max_bad_steps:
                            raise NonFiniteError(
                                f"stage {stage.name!r}: {self.bad_in_a_row} steps in a row had a non-finite loss or "
                                f"gradient (last at step {step}); lower the learning rate or check the data")
                        step += 1
                        if step % self.checkpoint_every == 0 or step == stage.steps:
                            done = step == stage.steps
                            self._save_checkpoint(index + 1 if done else index, 0 if done else step, optimizer)
                    if self.on_stage_end is not None and self.main:
                        self.on_stage_end(stage, self.out_dir / stage.name)
                    if self.world > 1:
                        dist.barrier()
                    state = None
        finally:
            bar.close()
            if writer is not None:
                writer.close()

    def _step(self, index: int, stage: Stage, step: int, params: list[nn.Parameter],
              optimizer: torch.optim.Optimizer, batcher: Batches, model: nn.Module) -> dict:
        warmup = int(stage.warmup_fraction * stage.steps)
        lr = SCHEDULES[stage.schedule](step, stage.steps, warmup, stage.lr_max, stage.lr_min)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        start = time.perf_counter()
        n_seconds = 0.0
        for micro in range(stage.accumulation):
            draw = (index * 1_000_003 + step) * stage.accumulation + micro
            batch, _ = batcher.batch(draw, stage.batch_size)  # the global batch, same on every process
            rows = slice(self.rank * stage.batch_size // self.world, (self.rank + 1) * stage.batch_size // self.world)
            clip_seeds = [(self.seed * 7_919 + draw) * 1_009 + i for i in range(stage.batch_size)][rows]
            if isinstance(batch, torch.Tensor):  # audio [B, N]
                inputs = batch[rows].to(self.device)
                n_seconds += inputs.numel() / self.objective.sample_rate
            else:  # per-row values by name; "seconds" holds each row's audio length
                inputs = {key: values[rows] for key, values in batch.items()}
                n_seconds += float(sum(inputs["seconds"]))
            generator = torch.Generator().manual_seed(self.seed * 7_919 + draw)
            with torch.autocast(self.device.type, dtype=PRECISIONS[self.precision],
                                enabled=self.precision != "float32"):
                metrics = model(inputs, generator=generator, clip_seeds=clip_seeds)
            self.scaler.scale(metrics["loss"] / stage.accumulation).backward()
            values = torch.stack([v.detach().float() for v in metrics.values()])
            if self.world > 1:  # every process must agree on the logged loss and on skipping
                dist.all_reduce(values)
                values /= self.world
            for key, value in zip(metrics, values.tolist()):
                sums[key] = sums.get(key, 0.0) + value / stage.accumulation
        n_seconds *= self.world
        self.scaler.unscale_(optimizer)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, stage.clip))
        skipped = not (math.isfinite(sums["loss"]) and math.isfinite(grad_norm))
        if skipped:
            log.warning("stage %s step %d: non-finite loss or gradient, step skipped", stage.name, step)
        # With fp16 an overflowing gradient is routine (the scaler lowers its scale and skips the
        # step); only a non-finite loss counts towards the stop.
        loss_bad = not math.isfinite(sums["loss"]) or (skipped and not self.scaler.is_enabled())
        self.bad_in_a_row = self.bad_in_a_row + 1 if loss_bad else 0
        if skipped and not self.scaler.is_enabled():
            optimizer.zero_grad(set_to_none=True)
        else:
            self.scaler.step(optimizer)  # skips by itself on inf/NaN gradients under fp16
        self.scaler.update()
        seconds = time.perf_counter() - start
        return {"stage": stage.name, "step": step, "lr": lr, **sums, "grad_norm": grad_norm, "skipped": skipped,
                "throughput/audio_s_per_s": n_seconds / seconds}

    def _save_checkpoint(self, stage: int, step: int, optimizer: torch.optim.Optimizer) -> None:
        """Atomic (temp file + rename), by the main process only; refuses non-finite weights."""
        if not self.main:
            return
        model = self.objective.state_dict()
        if not all(torch.isfinite(t).all() for t in model.values() if t.is_floating_point()):
            raise NonFiniteError("refusing to checkpoint non-finite weights")
        with atomic_file(self.checkpoint) as tmp:
            torch.save({"stage": stage, "step": step, "model": model, "scaler": self.scaler.state_dict(),
                        "optimizer": optimizer.state_dict() if step else {}, "rng": torch.get_rng_state(),
                        "stages": [asdict(s) for s in self.stages]}, tmp)

    def _load_checkpoint(self) -> dict | None:
        if not self.checkpoint.is_file():
            return None
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        self.objective.load_state_dict(state["model"])
        torch.set_rng_state(state["rng"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        log.info("resuming from %s: stage %d, step %d", self.checkpoint, state["stage"], state["step"])
        return state
