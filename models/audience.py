"""Suppression: the people a user never wants contacted, and why.

A suppression entry names one identity (username, user id or phone, in the
same normalized form as targets) per owner. Entries come from the user
(opt-outs, "never contact again") or from the service itself: a target that
failed for a permanent privacy reason is remembered so later tasks can skip it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from .outcomes import Outcome
from .targets import DEFAULT_PHONE_REGION, IdentityKind, TargetIn, normalize_identity


class SuppressionReason(StrEnum):
    OPT_OUT = "opt_out"
    NEVER_CONTACT = "never_contact"
    PRIVACY = "privacy"


# Permanent outcomes caused by the person's own privacy settings: asking again
# from another task or account gets the same answer (DESIGN.md, "Outcomes").
PRIVACY_OUTCOMES: frozenset[Outcome] = frozenset({Outcome.PRIVACY_RESTRICTED, Outcome.NOT_MUTUAL_CONTACT})

# Reason a target is skipped with when the suppression list holds it.
SKIP_REASON_SUPPRESSED = "suppressed"


def guess_identity_kind(raw: Any) -> IdentityKind:
    """The kind of a bare value in a suppression list: ``+7...`` is a phone, digits an id, the rest a username."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return IdentityKind.USER_ID
    text = str(raw).strip()
    if text.startswith(("+", "tel:")):
        return IdentityKind.PHONE
    if text.isascii() and text.isdigit():
        return IdentityKind.USER_ID
    return IdentityKind.USERNAME


class SuppressionEntry(BaseModel):
    """One identity a user does not want contacted; ``value`` is normalized on validation.

    ``kind`` may be left out for a bare value (see :func:`guess_identity_kind`);
    a phone without a country code is read in the context's ``default_region``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: IdentityKind
    value: str = Field(min_length=1, max_length=300)
    reason: SuppressionReason = SuppressionReason.OPT_OUT

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or data.get("value") is None:
            return data
        data = dict(data)
        raw = data["value"]
        kind = IdentityKind(data["kind"]) if data.get("kind") is not None else guess_identity_kind(raw)
        context = info.context if isinstance(info.context, dict) else {}
        data["kind"] = kind
        data["value"] = normalize_identity(kind, raw, context.get("default_region", DEFAULT_PHONE_REGION))
        return data


class SuppressionRecord(SuppressionEntry):
    """A stored entry; ``task_id`` is the task whose privacy failure added it."""

    id: int
    created_at: datetime
    task_id: str | None = None


class SuppressionPage(BaseModel):
    """One page of a user's suppression list, newest first; pass ``next_cursor`` for the next."""

    items: list[SuppressionRecord]
    next_cursor: int | None = None


def entries_for(target: TargetIn, reason: SuppressionReason) -> list[SuppressionEntry]:
    """Every identity of a target as a suppression entry (all of them: any may reach the person)."""
    return [
        SuppressionEntry.model_construct(kind=kind, value=value, reason=reason)  # already normalized
        for kind, value in target.identities
    ]
