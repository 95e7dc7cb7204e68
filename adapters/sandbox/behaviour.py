"""How the sandbox Telegram answers: pure, deterministic functions of the call.

Nothing here depends on time, order or Python's salted ``hash()``: the same
config and call always give the same verdict, on every machine, so tests can
know the outcome of each target in advance.

**Target key.** ``id:<user_id>`` if the target has a user id, else
``u:<username>`` (lower-case, no ``@``), else ``p:<phone>`` — the same key as
``models.targets.TargetIn.key``.

**Markers** (checked first; forced outcome whatever the shares):

=====================  ===================================  =====================
prefix                 invite                               message
=====================  ===================================  =====================
username ``privacy_``  error USER_PRIVACY_RESTRICTED        same
username ``missing_``  ok, not added, in missing_invitees   USER_PRIVACY_RESTRICTED
username ``member_``   error USER_ALREADY_PARTICIPANT       delivered
username ``deactivated_``  error INPUT_USER_DEACTIVATED     same
username ``nobody_``   error USERNAME_NOT_OCCUPIED          same
username ``bot_``      error USER_BOT                       same
username ``mutual_``   error USER_NOT_MUTUAL_CONTACT        delivered
username ``toomany_``  error USER_CHANNELS_TOO_MUCH         delivered
username ``kicked_``   error USER_KICKED                    delivered
username ``blocked_``  delivered                            error USER_IS_BLOCKED
username ``flaky_``    first attempt of each key: 503 before anything happens
username ``lost_``     first attempt of each key: delivered, then 503 (answer lost)
username ``slow_``     takes ``slow_ms`` longer (client timeouts)
chat ``private_``      error CHANNEL_PRIVATE                —
chat ``noadmin_``      error CHAT_ADMIN_REQUIRED            —
chat ``readonly_``     error CHAT_WRITE_FORBIDDEN           —
chat ``full_``         error USERS_TOO_MUCH                 —
account ``banned_``    error USER_DEACTIVATED_BAN           same
account ``revoked_``   error AUTH_KEY_UNREGISTERED          same
account ``peerflood_`` error PEER_FLOOD                     same
account ``flood_``     error FLOOD_WAIT (flood_wait_seconds)  same
=====================  ===================================  =====================

**Shares** (targets without a target marker): ``bucket = int(sha256(
f"{seed}|{target_key}")[:8]) % 1000``. ``bucket < privacy_share*1000`` →
privacy refusal (invite: ok with the user in ``missing_invitees``, as
Telegram answers today; message: USER_PRIVACY_RESTRICTED); next
``already_member_share*1000`` buckets → already a member of *every* chat
(invite: USER_ALREADY_PARTICIPANT; message: delivered); the rest succeed.

**Injected 5xx** (``fail_rate``): attempt ``n`` of key ``k`` fails when
``sha256(f"{seed}|fail|{k}|{n}")`` falls under ``fail_rate*1000``, so retries
of a failing key eventually pass at any rate below 1.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from adapters.integration import WireTarget

from .config import SandboxConfig

__all__ = [
    "Verdict",
    "account_marker",
    "chat_key",
    "chat_marker",
    "extra_latency_ms",
    "fake_user_id",
    "injected_failure",
    "stable_bucket",
    "target_key",
    "target_verdict",
]

Action = Literal["invite", "message"]
Phase = Literal["before", "after"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Telegram's answer to one action before any state is applied.

    ``code is None`` means the action goes through; ``missing`` means an
    invite goes through but the user is returned in ``missing_invitees``.
    """

    code: str | None = None
    seconds: int | None = None
    missing: bool = False

    @property
    def delivers(self) -> bool:
        return self.code is None and not self.missing


DELIVER = Verdict()
MISSING = Verdict(missing=True)


def _err(code: str, seconds: int | None = None) -> Verdict:
    return Verdict(code=code, seconds=seconds)


# prefix → (invite verdict, message verdict)
_TARGET_MARKERS: dict[str, tuple[Verdict, Verdict]] = {
    "privacy_": (_err("USER_PRIVACY_RESTRICTED"), _err("USER_PRIVACY_RESTRICTED")),
    "missing_": (MISSING, _err("USER_PRIVACY_RESTRICTED")),
    "member_": (_err("USER_ALREADY_PARTICIPANT"), DELIVER),
    "deactivated_": (_err("INPUT_USER_DEACTIVATED"), _err("INPUT_USER_DEACTIVATED")),
    "nobody_": (_err("USERNAME_NOT_OCCUPIED"), _err("USERNAME_NOT_OCCUPIED")),
    "bot_": (_err("USER_BOT"), _err("USER_BOT")),
    "mutual_": (_err("USER_NOT_MUTUAL_CONTACT"), DELIVER),
    "toomany_": (_err("USER_CHANNELS_TOO_MUCH"), DELIVER),
    "kicked_": (_err("USER_KICKED"), DELIVER),
    "blocked_": (DELIVER, _err("USER_IS_BLOCKED")),
}

_CHAT_MARKERS: dict[str, str] = {
    "private_": "CHANNEL_PRIVATE",
    "noadmin_": "CHAT_ADMIN_REQUIRED",
    "readonly_": "CHAT_WRITE_FORBIDDEN",
    "full_": "USERS_TOO_MUCH",
}

_ACCOUNT_MARKERS: dict[str, str] = {
    "banned_": "USER_DEACTIVATED_BAN",
    "revoked_": "AUTH_KEY_UNREGISTERED",
    "peerflood_": "PEER_FLOOD",
}


def _username(target: WireTarget) -> str:
    return (target.username or "").strip().lstrip("@").lower()


def target_key(target: WireTarget) -> str:
    """The target's identity (same format as ``models.targets.TargetIn.key``)."""
    if target.user_id is not None:
        return f"id:{target.user_id}"
    if target.username:
        return f"u:{_username(target)}"
    return f"p:{target.phone}"


def _digest(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def stable_bucket(key: str, seed: int = 0) -> int:
    """A bucket in [0, 1000) fixed by ``key`` and ``seed``."""
    return _digest(f"{seed}|{key}") % 1000


def fake_user_id(key: str) -> int:
    """A stable positive Telegram-like user id for a target known only by name or phone."""
    return 10_000_000 + _digest(f"uid|{key}") % 7_000_000_000


def _per_mille(share: float) -> int:
    return round(share * 1000)


def account_marker(account_id: str, config: SandboxConfig) -> Verdict | None:
    """The forced answer for a marked account id, if any."""
    name = account_id.lower()
    for prefix, code in _ACCOUNT_MARKERS.items():
        if name.startswith(prefix):
            return _err(code)
    if name.startswith("flood_"):
        return _err("FLOOD_WAIT", config.flood_wait_seconds)
    return None


_CHAT_PREFIXES = ("https://t.me/", "http://t.me/", "t.me/", "@")


def chat_key(chat: str) -> str:
    """``@Chat``, ``t.me/Chat`` and ``chat`` are one chat."""
    name = chat.strip()
    for prefix in _CHAT_PREFIXES:
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
            break
    return name.strip("/").lower()


def chat_marker(chat: str) -> Verdict | None:
    """The forced answer for a marked chat, if any."""
    name = chat_key(chat)
    for prefix, code in _CHAT_MARKERS.items():
        if name.startswith(prefix):
            return _err(code)
    return None


def target_verdict(action: Action, target: WireTarget, config: SandboxConfig) -> Verdict:
    """What Telegram says about this target, by marker or by the shares."""
    index = 0 if action == "invite" else 1
    name = _username(target)
    for prefix, verdicts in _TARGET_MARKERS.items():
        if name.startswith(prefix):
            return verdicts[index]
    bucket = stable_bucket(target_key(target), config.seed)
    privacy = _per_mille(config.privacy_share)
    if bucket < privacy:
        return MISSING if action == "invite" else _err("USER_PRIVACY_RESTRICTED")
    if bucket < privacy + _per_mille(config.already_member_share):
        return _err("USER_ALREADY_PARTICIPANT") if action == "invite" else DELIVER
    return DELIVER


def injected_failure(key: str, attempt: int, target: WireTarget, config: SandboxConfig) -> Phase | None:
    """Whether attempt ``attempt`` (1-based) of call ``key`` gets a 503, and when."""
    name = _username(target)
    if attempt == 1 and name.startswith("flaky_"):
        return "before"
    if attempt == 1 and name.startswith("lost_"):
        return "after"
    if config.fail_rate <= 0:
        return None
    if _digest(f"{config.seed}|fail|{key}|{attempt}") % 1000 >= _per_mille(config.fail_rate):
        return None
    if config.fail_phase != "mixed":
        return config.fail_phase
    return "before" if _digest(f"{config.seed}|phase|{key}|{attempt}") % 2 == 0 else "after"


def extra_latency_ms(target: WireTarget, config: SandboxConfig) -> int:
    """Additional processing time for targets marked ``slow_``."""
    return config.slow_ms if _username(target).startswith("slow_") else 0
