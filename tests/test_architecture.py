"""The folder order is the dependency order: a module imports only from its own package or from
packages listed before it (docs/architecture.md)."""

import ast
from pathlib import Path

import melos

ORDER = ["utils", "config", "audio", "data", "layers", "teachers", "models", "objectives", "embedding",
         "search", "evaluation", "training", "merging", "sense", "lm", "quickstart", "cli"]
ROOT = Path(melos.__file__).parent


def imported_packages(file: Path) -> set[str]:
    """Top-level melos packages that `file` imports (lazily or not), by relative import."""
    package = file.relative_to(ROOT).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - (node.level - 1)]) + (node.module.split(".") if node.module else [])
            names = base if base else [a.name for a in node.names]
            found.update(names[:1] if base else names)
    return found


def test_imports_point_down():
    wrong = []
    for file in sorted(ROOT.rglob("*.py")):
        own = file.relative_to(ROOT).parts[0].removesuffix(".py")
        if own == "__init__":
            continue  # the package root re-exports the public API
        for target in imported_packages(file) & set(ORDER):
            if ORDER.index(target) > ORDER.index(own):
                wrong.append(f"{file.relative_to(ROOT)} imports {target}")
    assert not wrong, "imports that point up: " + "; ".join(wrong)


def test_every_package_has_a_place_in_the_order():
    packages = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert packages - {"__init__"} == set(ORDER)
