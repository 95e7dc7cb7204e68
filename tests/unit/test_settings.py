"""Settings: per-account limit overrides from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.limits import DAY, HOUR, ActionKind, Window
from models.settings import Settings


def test_an_account_override_changes_only_that_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVITE_ACCOUNT_LIMITS", '{"slow-1": {"invites_per_hour": 2, "pause_min_seconds": 120,'
                                                 ' "pause_max_seconds": 240}}')
    settings = Settings()
    slow = settings.limit_policy("slow-1")
    assert slow.windows[ActionKind.INVITE] == [Window(2, HOUR), Window(50, DAY)]
    assert (slow.pause_min, slow.pause_max) == (120, 240)
    assert settings.limit_policy("other") == settings.limit_policy()


def test_a_bad_override_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVITE_ACCOUNT_LIMITS", '{"acc": {"invites_per_hour": -1}}')
    with pytest.raises(ValidationError, match="invites_per_hour"):
        Settings()
    monkeypatch.setenv("INVITE_ACCOUNT_LIMITS", '{"acc": {"invites_per_hours": 3}}')
    with pytest.raises(ValidationError, match="invites_per_hours"):
        Settings()
