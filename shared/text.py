"""Text rules both services apply: to free text, and to the account identifiers.

Each rule is a function returning the problem as a sentence, or None, so a marshmallow
validator (`validator(rule)`) and a hand-written fast path apply the very same check.
Identifiers are matched over the whole string (`fullmatch`): with `re.match` and `$`, a
trailing newline would pass.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from marshmallow import ValidationError

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CLOUD_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# The same rules as JSON Schema patterns, for the OpenAPI documents.
NO_CONTROL_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
NO_NUL_PATTERN = "^[^\\u0000]*$"
# At least one character that is not a dot: `.` and `..` are path segments of their own.
CLOUD_ID_PATTERN = r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$"

Rule = Callable[[str], "str | None"]


def unpaired_surrogate(value: str) -> str | None:
    # JSON can carry "\ud800"; it cannot be encoded as UTF-8 for PostgreSQL, Redis or a
    # provider, so it is a field error, not a crash later.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "Contains an unpaired surrogate."
    return None


def control_characters(value: str) -> str | None:
    found = CONTROL_CHARACTERS.search(value)
    if found:
        return f"Must not contain control characters (found U+{ord(found.group()):04X})."
    return unpaired_surrogate(value)


def storable_text(value: str) -> str | None:
    """Plain Unicode text PostgreSQL can hold in a column: no U+0000, no lone surrogate."""
    if "\x00" in value:
        return "Must not contain the character U+0000."
    return unpaired_surrogate(value)


def cloud_id(value: str) -> str | None:
    if not _CLOUD_ID.fullmatch(value):
        return "Must be 1-64 characters of [A-Za-z0-9_.-]."
    if not value.strip("."):
        return "Must not consist of dots only."
    return None


def username(value: str) -> str | None:
    if not 1 <= len(value) <= 128:
        return "Must be 1-128 characters."
    return control_characters(value)


def validator(rule: Rule) -> Callable[[str], None]:
    """The rule as a marshmallow validator."""

    def validate(value: str) -> None:
        problem = rule(value)
        if problem is not None:
            raise ValidationError(problem)

    validate.__name__ = rule.__name__
    return validate
