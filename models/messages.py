"""Message templates: ``{first_name}``-style placeholders filled from target fields."""

from __future__ import annotations

import string

PLACEHOLDERS = frozenset({"first_name", "last_name", "username", "user_id"})


def unknown_placeholders(template: str) -> list[str]:
    """Placeholders the template uses that no target can fill (validated at task creation)."""
    names = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    return sorted({n for n in names if n not in PLACEHOLDERS})


def render(template: str, fields: dict[str, object | None]) -> str:
    values = {name: "" if fields.get(name) is None else str(fields[name]) for name in PLACEHOLDERS}
    return template.format_map(values)
