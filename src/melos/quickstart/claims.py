"""The seven claims the quickstart tests (the CultureMERT paper's, at toy scale) and their verdicts.

Each claim compares a model with the western-only one on a tradition's test ROC-AUC. Its verdict
comes from the paired bootstrap interval of the difference over the test clips, never from the
point estimate alone:

    holds         the whole 95% interval is on the claimed side of the threshold
    contradicted  the whole interval is on the other side
    unclear       the interval contains the threshold (or is undefined)

    claimed side:  gain      ------0=====[low ..... high]====>   holds
                   gain      ====[low ..0.... high]=========>   unclear
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..data.synth import TRADITIONS
from .config import WESTERN

VERDICTS = ("holds", "unclear", "contradicted")
FORGETTING = 0.02  # the multi-tradition model may lose less than this on western (the paper: ~1 point)


@dataclass(frozen=True)
class Claim:
    """`model` minus `baseline` on `task`'s test ROC-AUC is above `threshold`."""

    model: str
    baseline: str
    task: str
    threshold: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.model} - {self.baseline} on {self.task}"

    @property
    def sentence(self) -> str:
        if self.threshold < 0:
            return f"{self.model} loses less than {-self.threshold:g} on {self.task}"
        return f"{self.model}{' model' if self.model == self.task else ''} beats {self.baseline} on {self.task}"


def claims() -> list[Claim]:
    """Every single-tradition model and the multi-tradition model beat the western-only one on the
    non-western traditions; the multi-tradition model loses less than FORGETTING on western."""
    others = [t for t in TRADITIONS if t != WESTERN]
    return ([Claim(t, WESTERN, t) for t in others] + [Claim("multi", WESTERN, t) for t in others]
            + [Claim("multi", WESTERN, WESTERN, -FORGETTING)])


def verdict(low: float, high: float, threshold: float = 0.0) -> str:
    """`holds`, `contradicted` or `unclear` for an interval [low, high] of the difference."""
    if math.isnan(low) or math.isnan(high):
        return "unclear"
    if low > threshold:
        return "holds"
    if high < threshold:
        return "contradicted"
    return "unclear"


def paired_intervals(probe: Path, runs: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Each claim's ROC-AUC difference with its 95% bootstrap interval over the test clips, from
    the probes' saved test outputs (`runs`: model -> task -> probe run)."""
    from safetensors.torch import load_file

    from ..evaluation.metrics import roc_auc_macro
    from ..evaluation.significance import paired_difference

    intervals = {}
    for claim in claims():
        a, b = (load_file(probe / runs[m][claim.task]["test_outputs"]) for m in (claim.model, claim.baseline))
        intervals[claim.key] = paired_difference(a["outputs"], b["outputs"], a["targets"],
                                                 lambda o, y: roc_auc_macro(o, y)[0])
    return intervals


def checks(intervals: dict[str, dict[str, float]]) -> list[dict]:
    """results.json's `checks`: each claim with its difference, interval and verdict."""
    out = []
    for claim in claims():
        i = intervals[claim.key]
        out.append({"claim": claim.sentence, "model": claim.model, "baseline": claim.baseline, "task": claim.task,
                    "difference": i["difference"], "low": i["low"], "high": i["high"],
                    "verdict": verdict(i["low"], i["high"], claim.threshold)})
    return out


def tally(checks: list[dict]) -> str:
    """E.g. '2 of 7 claims hold, 5 unclear, 0 contradicted'."""
    n = {v: sum(c["verdict"] == v for c in checks) for v in VERDICTS}
    return (f"{n['holds']} of {len(checks)} claims hold, {n['unclear']} unclear, "
            f"{n['contradicted']} contradicted")


def describe(check: dict) -> str:
    """A check's claim with its difference and interval."""
    return (f"{check['claim']}: difference {check['difference']:+.3f}, 95% interval over test clips "
            f"{check['low']:+.3f} to {check['high']:+.3f}")


def check_line(check: dict) -> str:
    """One check as the run prints it: the verdict, then `describe`."""
    return f"{check['verdict'].upper():<12} {describe(check)}"


def summary(checks: list[dict], groups: dict[str, dict[str, dict[str, float]]]) -> str:
    """The report's opening paragraph: what the run shows, and for every other claim what the
    tag-group table says about it (groups both models read near chance, the group that moved most)."""
    shown = [c for c in checks if c["verdict"] == "holds"]
    parts = [f"This run's verdicts: {tally(checks)} (95% paired bootstrap intervals over the test clips of "
             "the evaluation corpus)."]
    if shown:
        parts.append("It shows: " + "; ".join(f"{c['claim']} ({c['difference']:+.3f}, {c['low']:+.3f} to "
                                               f"{c['high']:+.3f})" for c in shown) + ".")
    else:
        parts.append("It shows none of the claimed effects.")
    for c in checks:
        if c["verdict"] == "holds":
            continue
        mine, base = groups[c["model"]][c["task"]], groups[c["baseline"]][c["task"]]
        shared = [g for g in ("mode", "metre", "instruments") if g in mine and g in base]
        chance = [f"{g} ({mine[g]:.2f} vs {base[g]:.2f})" for g in shared if max(abs(mine[g] - 0.5), abs(base[g] - 0.5)) < 0.1]
        moved = max(shared, key=lambda g: abs(mine[g] - base[g]), default=None)
        why = f"both models read {', '.join(chance)} near chance" if chance else "no tag group is near chance"
        if moved is not None:
            why += f"; the largest group difference is {moved} ({mine[moved] - base[moved]:+.2f})"
        parts.append(f"{c['verdict'].capitalize()}: {c['claim']} ({c['difference']:+.3f}, {c['low']:+.3f} to "
                     f"{c['high']:+.3f}): {why}.")
    return " ".join(parts)
