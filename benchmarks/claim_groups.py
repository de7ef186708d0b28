"""Each quickstart claim per tag group: the paired bootstrap difference of test ROC-AUC over the
mode, metre and instrument tags separately, from a finished run's saved test outputs.

    python benchmarks/claim_groups.py quickstart

Which part of a tradition an adaptation taught the encoder (and which group is read at chance),
with the same interval the quickstart's verdicts use.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors.torch import load_file

from melos.evaluation.metrics import roc_auc_macro
from melos.evaluation.significance import paired_difference
from melos.evaluation.tasks import load_task
from melos.quickstart.claims import claims
from melos.quickstart.report import tag_groups

GROUPS = ("mode", "metre", "instruments")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("quickstart", type=Path, help="a finished `melos quickstart` output folder")
    out = parser.parse_args().quickstart
    probed = json.loads((out / "probe" / "results.json").read_text())["runs"]
    runs = {name: probed[str(out / "runs" / name / "final")] for name in ("western", "makam", "raga", "greek", "multi")}
    groups = tag_groups(out / "eval-corpus" / "manifest.jsonl")
    print("| claim | " + " | ".join(GROUPS) + " |\n|---|" + "---|" * len(GROUPS))
    for claim in claims():
        vocabulary = load_task(out / "data" / f"{claim.task}.yaml").vocabulary
        a, b = (load_file(out / "probe" / runs[m][claim.task]["test_outputs"]) for m in (claim.model, claim.baseline))
        cells = []
        for group in GROUPS:
            tags = [i for i, tag in enumerate(vocabulary) if groups[tag] == group]
            r = paired_difference(a["outputs"][..., tags], b["outputs"][..., tags], a["targets"][:, tags],
                                  lambda o, y: roc_auc_macro(o, y)[0])
            cells.append(f"{r['difference']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]")
        print(f"| {claim.sentence} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
