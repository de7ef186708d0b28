"""matplotlib for report figures: files only (the Agg backend), one look for every figure."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

from .atomic import atomic_file

DPI = 120


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend, so figures render without a display. Imported on
    first use: matplotlib takes about a second to import and most commands draw nothing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path) -> Path:
    """Lay out, write `fig` as PNG to `path` (atomically) and close it (figures left open
    accumulate memory)."""
    plt = pyplot()
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return Path(path)
