"""Typed YAML: every recipe kind (training, merging, quickstart, probing tasks) is a small YAML
file read into dataclasses, never executed. Unknown keys, missing keys and wrong types are errors
that name the file and the path to the value:

    load_typed("recipes/culturemert-95m.yaml", Recipe, ["stages.0.steps=100"])

`key.path=VALUE` overrides (the CLI's `--set`) reach into mappings by key and lists by index;
VALUE is read as YAML (numbers, lists, strings). A nested dataclass is built from the keys given
for it (file and overrides) over its class defaults.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import yaml


def load_typed(path: str | Path, cls: type, overrides: Sequence[str] = (), what: str = "recipe") -> Any:
    """A YAML file as dataclass `cls`, after `key.path=value` overrides; every field type-checked."""
    path = Path(path)
    data = read_yaml(path, what)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected key.path=value")
        _set(data, key.split("."), yaml.safe_load(value), item)
    return build(cls, data, str(path))


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content ({} when empty); errors name the file and say what it should be."""
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {what} not found") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None


def _set(data: Any, keys: list[str], value: Any, item: str) -> None:
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(data, list):
            if not key.isdigit() or int(key) >= len(data):
                raise ValueError(f"override {item!r}: no list item {key}")
            key = int(key)
        elif not isinstance(data, dict):
            raise ValueError(f"override {item!r}: {'.'.join(keys[:i])} is not a mapping")
        if last:
            data[key] = value
        else:
            data = data.setdefault(key, {}) if isinstance(data, dict) else data[key]


def check_keys(data: Any, cls: type, where: str, ignore: Collection[str] = (), also: Collection[str] = ()) -> None:
    """Refuse `data` unless it is a mapping with no key but the fields of dataclass `cls` (less
    `ignore`, which YAML may not set, plus `also`, which the caller translates) and with every
    required field. Errors name `where`; an unknown key, most likely a typo, lists the known ones."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping for {cls.__name__}, got {data!r}")
    fields = [f for f in dataclasses.fields(cls) if f.init and f.name not in ignore]
    known = {f.name for f in fields} | set(also)
    unknown = sorted(set(data) - known, key=str)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(map(str, unknown))} for {cls.__name__} "
                         f"(known: {', '.join(sorted(known))})")
    missing = [f.name for f in fields if f.name not in data
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ValueError(f"{where}: missing key(s) {', '.join(missing)} for {cls.__name__}")


def build(cls: type, data: Any, where: str) -> Any:
    """Dataclass `cls` from parsed YAML; bad keys, wrong types and the class's own validation
    errors (`__post_init__`) name `where` and the path to the value."""
    check_keys(data, cls, where)
    hints = typing.get_type_hints(cls)
    values = {k: _convert(hints[k], v, f"{where}: {k}") for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _convert(next(a for a in args if a is not type(None)), value, where)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}")
        return {_convert(args[0], k, f"{where}: {k}"): _convert(args[1], v, f"{where}: {k}") for k, v in value.items()}
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        if origin is tuple:
            if len(value) != len(args):
                raise ValueError(f"{where}: expected {len(args)} items, got {value!r}")
            return tuple(_convert(a, v, f"{where}: {i}") for i, (a, v) in enumerate(zip(args, value)))
        return [_convert(args[0], v, f"{where}: {i}") for i, v in enumerate(value)]
    if hint is float and isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:  # PyYAML reads "5e-4" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint in (int, str, bool) and type(value) is hint:
        return value
    raise ValueError(f"{where}: expected {getattr(hint, '__name__', hint)}, got {value!r}")
