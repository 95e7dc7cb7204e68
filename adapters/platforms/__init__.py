"""Messenger platforms: the adapter contract, the registry and the built-ins.

``get_adapter("telegram", client=IntegrationClient(url))`` is all a caller needs.
"""

from .base import (
    UNAVAILABLE_PREFIX,
    AccountState,
    PlatformAccount,
    PlatformAdapter,
    TargetRef,
    delivery_unknown,
)
from .registry import UnknownPlatform, adapter_class, available_platforms, get_adapter, register

__all__ = [
    "UNAVAILABLE_PREFIX",
    "AccountState",
    "PlatformAccount",
    "PlatformAdapter",
    "TargetRef",
    "UnknownPlatform",
    "adapter_class",
    "available_platforms",
    "delivery_unknown",
    "get_adapter",
    "register",
]
