"""Platform registry: adding a messenger is one registered class.

    @register("telegram")
    class TelegramAdapter(PlatformAdapter): ...

    adapter = get_adapter("telegram", client=integration_client)

Built-in platforms are imported lazily on first lookup, so callers need not
remember to import ``adapters.platforms.telegram`` for its side effect.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from .base import PlatformAdapter

__all__ = ["UnknownPlatform", "adapter_class", "available_platforms", "get_adapter", "register"]

A = TypeVar("A", bound=type[PlatformAdapter])

_REGISTRY: dict[str, type[PlatformAdapter]] = {}
_BUILTIN_MODULES: dict[str, str] = {
    "telegram": "adapters.platforms.telegram",
    "telethon": "adapters.platforms.telethon",
}


class UnknownPlatform(LookupError):
    """No adapter is registered under that platform name."""


def register(name: str) -> Callable[[A], A]:
    """Class decorator registering a :class:`PlatformAdapter` under ``name``."""
    key = name.lower()

    def decorate(cls: A) -> A:
        if not (isinstance(cls, type) and issubclass(cls, PlatformAdapter)):
            raise TypeError(f"{cls!r} is not a PlatformAdapter")
        existing = _REGISTRY.get(key)
        if existing is not None and existing is not cls:
            raise ValueError(f"platform {key!r} already registered by {existing.__qualname__}")
        cls.platform = key
        _REGISTRY[key] = cls
        return cls

    return decorate


def _load(name: str) -> type[PlatformAdapter]:
    key = name.lower()
    if key not in _REGISTRY and key in _BUILTIN_MODULES:
        importlib.import_module(_BUILTIN_MODULES[key])
    try:
        return _REGISTRY[key]
    except KeyError:
        raise UnknownPlatform(f"no adapter for platform {name!r}; known: {available_platforms()}") from None


def adapter_class(platform: str) -> type[PlatformAdapter]:
    """The class registered for ``platform``."""
    return _load(platform)


def get_adapter(platform: str, **deps: Any) -> PlatformAdapter:
    """Build the adapter for ``platform``; ``deps`` go to its constructor."""
    return _load(platform)(**deps)


def available_platforms() -> list[str]:
    """Registered names plus built-ins not imported yet."""
    return sorted(set(_REGISTRY) | set(_BUILTIN_MODULES))
