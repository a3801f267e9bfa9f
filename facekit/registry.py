"""One way to name a component: ``REG = Registry("backbone")``, ``@REG.register("name")`` on a builder,
``REG.build("name", ...)`` to make one, ``REG.names()`` to list them. A wrong name is a one-line error with the
closest known names. Backbones, feature extractors, chief-loss heads, auxiliary losses, engines, benchmarks and
alignment templates each have one (``docs/extending.md``); a plugin module (``FACEKIT_PLUGINS``) adds its own."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from facekit.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, hints: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.hints = hints or {}  # name -> a sentence for a known confusion
        self._items: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: ``obj`` under each of ``names``; a name taken already is an error (no silent override)."""
        def add(obj: T) -> T:
            for name in names:
                if name in self._items:
                    raise ValueError(f"{self.kind} {name!r} is registered already")
                self._items[name] = obj
            return obj

        return add

    def get(self, name: str, where: str = "") -> T:
        if name not in self._items:
            raise InputError(self.unknown(name, where))
        return self._items[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``get(name)(*args, **kwargs)``."""
        return self.get(name)(*args, **kwargs)

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def check(self, name: str, where: str) -> None:
        """Raise the unknown-name error for a recipe setting before any work starts."""
        self.get(name, where)

    def unknown(self, name: str, where: str = "") -> str:
        close = difflib.get_close_matches(str(name), self._items, n=3, cutoff=0.6)
        hint = f" ({self.hints[name]})" if name in self.hints else \
            f"; did you mean {' or '.join(close)}?" if close else ""
        return f"{where + ': ' if where else ''}unknown {self.kind} {name!r}{hint} (known: {', '.join(self._items)})"

    def __contains__(self, name: object) -> bool:
        return name in self._items


def load_plugins(spec: str | None = None) -> list[str]:
    """Import the plugin modules named in ``FACEKIT_PLUGINS`` (comma separated: module names or .py files), whose
    ``@REG.register`` lines add components. Returns the modules imported."""
    spec = os.environ.get("FACEKIT_PLUGINS", "") if spec is None else spec
    loaded = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if item.endswith(".py"):
            path = Path(item)
            if not path.is_file():
                raise InputError(f"FACEKIT_PLUGINS: {path}: file not found")
            name = f"facekit_plugin_{path.stem}"
            if name not in sys.modules:
                module_spec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(module_spec)
                sys.modules[name] = module
                module_spec.loader.exec_module(module)
        else:
            try:
                importlib.import_module(item)
            except ImportError as err:
                raise InputError(f"FACEKIT_PLUGINS: cannot import {item!r} ({err})") from None
        loaded.append(item)
    return loaded
