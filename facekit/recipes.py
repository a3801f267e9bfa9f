"""Recipes: YAML files of nested settings, ``--set a.b=value`` overrides, typed into nested dataclasses.

Unknown keys and wrong types fail with one line naming the recipe and the key, before any work starts."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from facekit.errors import InputError

T = TypeVar("T")


def read_recipe(path: Path | None, overrides: list[str] = ()) -> dict:
    """The recipe's mapping with ``key.sub=value`` overrides applied (values parsed as YAML)."""
    data: dict = {}
    if path is not None:
        if not path.is_file():
            raise InputError(f"{path}: recipe not found")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise InputError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: a recipe is a mapping of sections")
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set {item!r}: expected key.sub=value, e.g. optim.lr=0.1")
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InputError(f"--set {item!r}: {p!r} is not a section")
        node[leaf] = yaml.safe_load(value)
    return data


def build(cls: type[T], data: dict, where: str) -> T:
    """Nested dataclass ``cls`` from ``data``; ``where`` names the source in errors (recipe path + key)."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(fields)})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for alt in inner[:-1]:  # the first alternative that takes the value
            try:
                return _coerce(alt, value, where)
            except InputError:
                continue
        return _coerce(inner[-1], value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}")
        return tuple(_coerce(args[0], v, where) for v in value) if origin is tuple else list(value)
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is Path and isinstance(value, str):
        return Path(value)
    if hint in (int, str, bool) and not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise InputError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def to_dict(obj: Any) -> Any:
    """Dataclass tree -> plain YAML-able data (Paths as strings, tuples as lists)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
