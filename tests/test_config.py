"""The typed YAML loader every recipe kind shares: types, paths in errors, and --set overrides."""

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import melos.config
from melos.config import build, check_keys, load_typed, read_yaml


@dataclass
class Inner:
    name: str
    rate: float = 0.5


@dataclass
class Checked:
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"low {self.low} above high {self.high}")


@dataclass
class Outer:
    count: int = 1
    scale: float = 1.0
    flag: bool = False
    label: str = "x"
    pair: tuple[int, float] = (0, 0.0)
    tags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=lambda: Inner("default"))
    stages: list[Inner] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    limit: int | None = None
    monitor: Inner | None = None
    checked: Checked = field(default_factory=Checked)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_every_field_kind_is_read_and_typed(tmp_path):
    path = write(tmp_path, """
count: 3
scale: 2              # an int where a float is expected
flag: true
label: hello
pair: [4, 5e-4]       # PyYAML reads 5e-4 (no dot) as a string
tags: [a, b]
inner: {name: n, rate: 1}
stages: [{name: s0}, {name: s1, rate: 0.25}]
weights: {"block.1*": 0.3, cnn: 2}
limit: 7
monitor: null
""")
    expected = Outer(count=3, scale=2.0, flag=True, label="hello", pair=(4, 0.0005), tags=["a", "b"],
                     inner=Inner("n", 1.0), stages=[Inner("s0", 0.5), Inner("s1", 0.25)],
                     weights={"block.1*": 0.3, "cnn": 2.0}, limit=7, monitor=None)
    got = load_typed(path, Outer)
    assert got == expected
    assert type(got.scale) is float and type(got.pair[1]) is float and type(got.weights["cnn"]) is float


def test_an_empty_file_gives_the_defaults(tmp_path):
    assert load_typed(write(tmp_path, ""), Outer) == Outer()
    assert load_typed(write(tmp_path, "monitor: {name: m}\n"), Outer).monitor == Inner("m", 0.5)


@pytest.mark.parametrize("text, message", [
    ("count: two\n", "r.yaml: count: expected int, got 'two'"),
    ("count: 1.5\n", "r.yaml: count: expected int, got 1.5"),
    ("count: true\n", "r.yaml: count: expected int, got True"),
    ("flag: 1\n", "r.yaml: flag: expected bool, got 1"),
    ("label: 5\n", "r.yaml: label: expected str, got 5"),
    ("scale: fast\n", "r.yaml: scale: expected float, got 'fast'"),
    ("scale: false\n", "r.yaml: scale: expected float, got False"),
    ("tags: a\n", "r.yaml: tags: expected a list, got 'a'"),
    ("pair: [1]\n", "r.yaml: pair: expected 2 items, got [1]"),
    ("pair: [1, x]\n", "r.yaml: pair: 1: expected float, got 'x'"),
    ("inner: 3\n", "r.yaml: inner: expected a mapping for Inner, got 3"),
    ("inner: {name: 1}\n", "r.yaml: inner: name: expected str, got 1"),
    ("stages: [{name: a}, {name: b, rate: slow}]\n", "r.yaml: stages: 1: rate: expected float, got 'slow'"),
    ("weights: [1]\n", "r.yaml: weights: expected a mapping, got [1]"),
    ("weights: {cnn: big}\n", "r.yaml: weights: cnn: expected float, got 'big'"),
    ("weights: {1: 0.5}\n", "r.yaml: weights: 1: expected str, got 1"),
    ("limit: many\n", "r.yaml: limit: expected int, got 'many'"),
    ("- a list\n", "r.yaml: expected a mapping for Outer, got ['a list']"),
])
def test_wrong_types_are_named_with_their_path(tmp_path, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_typed(write(tmp_path, text), Outer)


def test_unknown_and_missing_keys_are_named_with_their_path(tmp_path):
    with pytest.raises(ValueError, match=re.escape(
            "r.yaml: unknown key(s) cuont, lable for Outer (known: checked, count, flag, inner, label, limit, "
            "monitor, pair, scale, stages, tags, weights)")):
        load_typed(write(tmp_path, "cuont: 1\nlable: x\n"), Outer)
    with pytest.raises(ValueError, match=re.escape("r.yaml: stages: 0: unknown key(s) rat for Inner (known: name, rate)")):
        load_typed(write(tmp_path, "stages: [{name: a, rat: 1}]\n"), Outer)
    with pytest.raises(ValueError, match=re.escape("r.yaml: inner: missing key(s) name for Inner")):
        load_typed(write(tmp_path, "inner: {rate: 1}\n"), Outer)


def test_validation_errors_of_a_dataclass_name_its_path(tmp_path):
    with pytest.raises(ValueError, match=re.escape("r.yaml: checked: low 2.0 above high 1.0")):
        load_typed(write(tmp_path, "checked: {low: 2}\n"), Outer)


def test_overrides_reach_dotted_paths_and_list_items(tmp_path):
    path = write(tmp_path, "stages: [{name: a}, {name: b}]\nweights: {cnn: 1}\n")
    got = load_typed(path, Outer, ["count=4", "inner.name=n", "inner.rate=0.75", "stages.1.rate=2", "weights.cnn=3e-1",
                                   "weights.new=1", "tags=[x, y]", "monitor.name=m", "label=a=b"])
    assert got.count == 4 and got.inner == Inner("n", 0.75) and got.label == "a=b"
    assert got.stages == [Inner("a", 0.5), Inner("b", 2.0)]
    assert got.weights == {"cnn": 0.3, "new": 1.0} and got.tags == ["x", "y"] and got.monitor == Inner("m", 0.5)


def test_overrides_are_typed_and_checked_like_the_file(tmp_path):
    path = write(tmp_path, "stages: [{name: a}]\n")
    cases = [
        ("count", "override 'count': expected key.path=value"),
        ("stages.1.rate=2", "override 'stages.1.rate=2': no list item 1"),
        ("stages.first.rate=2", "override 'stages.first.rate=2': no list item first"),
        ("stages.0.name.x=2", "override 'stages.0.name.x=2': stages.0.name is not a mapping"),
        ("count=two", "r.yaml: count: expected int, got 'two'"),
        ("inner.nmae=x", "r.yaml: inner: unknown key(s) nmae for Inner (known: name, rate)"),
    ]
    for override, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            load_typed(path, Outer, [override])


def test_read_yaml_names_the_file_and_what_it_should_be(tmp_path):
    assert read_yaml(write(tmp_path, "a: [1, 2]\n"), "recipe") == {"a": [1, 2]}
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path / 'none.yaml'}: merge recipe not found")):
        read_yaml(tmp_path / "none.yaml", "merge recipe")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'r.yaml'}: not valid YAML")):
        read_yaml(write(tmp_path, "a: [1, 2\n"), "recipe")
    with pytest.raises(FileNotFoundError, match="settings not found"):
        load_typed(tmp_path / "none.yaml", Outer, what="settings")


def test_check_keys_ignores_derived_fields_and_accepts_aliases():
    @dataclass
    class Task:
        name: str
        window: float
        items: list[str] = field(default_factory=list)

    check_keys({"name": "t", "window": 1, "alias": 2}, Task, "t.yaml", also={"alias"})
    with pytest.raises(ValueError, match=re.escape("t.yaml: unknown key(s) items for Task (known: name, window)")):
        check_keys({"name": "t", "window": 1, "items": []}, Task, "t.yaml", ignore={"items"})
    with pytest.raises(ValueError, match=re.escape("t.yaml: missing key(s) name, window for Task")):
        check_keys({}, Task, "t.yaml")
    assert build(Task, {"name": "t", "window": 2}, "t.yaml") == Task("t", 2.0)


def test_the_loader_depends_on_nothing_in_melos():
    tree = ast.parse(Path(melos.config.__file__).read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [m for m in imported if m.startswith("melos") or m == ""]
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level > 0]
