"""Validating a batch of audience rows, one row at a time."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .targets import TargetIn


def validate_rows(rows: list[dict[str, Any]]) -> tuple[list[TargetIn], list[dict[str, Any]]]:
    """Split rows into accepted targets and problems (row number + reason)."""
    accepted: list[TargetIn] = []
    problems: list[dict[str, Any]] = []
    for number, row in enumerate(rows, start=1):
        try:
            accepted.append(TargetIn.model_validate(row))
        except ValidationError as exc:
            reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())
            problems.append({"row": number, "reason": reason})
    return accepted, problems
