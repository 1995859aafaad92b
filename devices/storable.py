"""Values the record can store, checked once at the boundary.

Everything the gateway accepts ends up in SQLite (the journal) and in PostgreSQL (``text``,
``jsonb``, ``bigint``, ``smallint`` columns). PostgreSQL refuses NUL characters in text and jsonb,
unpaired UTF-16 surrogates, and integers outside a column's range; JSON ``NaN``/``Infinity``
have no jsonb form at all; Python's own parser gives up on very deep nesting and very long
integers. A value the record cannot store must be refused when the message arrives, with a
reason the sender can act on, not found later by the shipper, where one row would stop every
row behind it.

This module is the one place those limits live: the JSON parser hooks, a walk over parsed
JSON, and the annotated types the protocol models use for their text, numbers and extras.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field

# PostgreSQL bigint: the widest integer column (seq, journal_seq). jsonb could hold more, but a
# number that fits no column is a fault in the sender, not data.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
# The longest decimal integer that can be within int64 (sign included): parse nothing longer.
_MAX_INT_CHARS = 20
# Deepest JSON nesting accepted anywhere. The protocol's own payloads are two levels deep;
# vendor ``detail`` gets some room but nothing near Python's recursion limit.
MAX_DEPTH = 16


class Refusal(StrEnum):
    """Why a value cannot be stored; each is also a dead-letter reason."""

    INTEGER_OUT_OF_RANGE = "integer_out_of_range"
    NUL_CHARACTER = "nul_character"
    UNPAIRED_SURROGATE = "unpaired_surrogate"
    NON_FINITE_NUMBER = "non_finite_number"
    TOO_DEEP = "too_deep"
    TIME_OUT_OF_RANGE = "time_out_of_range"


class Unstorable(ValueError):
    """A value the record cannot store. A ValueError, so pydantic reports it as a field error."""

    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(f"{refusal.value}: {detail}")
        self.refusal = refusal
        self.detail = detail


def text_problem(s: str) -> Refusal | None:
    """Why a string cannot be stored as PostgreSQL text, or None."""
    if "\x00" in s:
        return Refusal.NUL_CHARACTER
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            return Refusal.UNPAIRED_SURROGATE
    return None


def check_text(s: str) -> str:
    problem = text_problem(s)
    if problem is not None:
        raise Unstorable(problem, "text contains a character the record cannot store")
    return s


def check_int(n: int) -> int:
    if not INT64_MIN <= n <= INT64_MAX:
        raise Unstorable(Refusal.INTEGER_OUT_OF_RANGE, "integer outside the 64-bit range")
    return n


def check_time(t: datetime) -> datetime:
    """A time that has a UTC form (year 1 at +01:00 has none: it is before year 1 in UTC)."""
    try:
        t.astimezone(UTC)
    except OverflowError as exc:
        raise Unstorable(Refusal.TIME_OUT_OF_RANGE, "time has no UTC form") from exc
    return t


def check_json(value: Any) -> Any:
    """Walk parsed JSON (iteratively: depth is what is being checked) and refuse the first
    value the record cannot store. Returns the value unchanged."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            check_int(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise Unstorable(Refusal.NON_FINITE_NUMBER, "NaN or an infinity")
        elif isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise Unstorable(Refusal.TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for k, v in item.items():
                    check_text(str(k))
                    stack.append((v, depth + 1))
            else:
                stack.extend((v, depth + 1) for v in item)
        else:  # not JSON at all (only reachable from Python callers)
            raise TypeError(f"not a JSON value: {type(item).__name__}")
    return value


def _parse_int(s: str) -> int:
    if len(s) > _MAX_INT_CHARS:
        raise Unstorable(Refusal.INTEGER_OUT_OF_RANGE, f"a {len(s)}-digit integer")
    return check_int(int(s))


def _parse_float(s: str) -> float:
    if len(s) > 400:  # no float needs this many characters; keeps parsing cost bounded
        raise Unstorable(Refusal.NON_FINITE_NUMBER, f"a {len(s)}-character number")
    f = float(s)
    if not math.isfinite(f):  # 1e999 parses as inf
        raise Unstorable(Refusal.NON_FINITE_NUMBER, f"{s[:40]} overflows a double")
    return f


def _parse_constant(name: str) -> float:
    raise Unstorable(Refusal.NON_FINITE_NUMBER, f"{name} is not a number JSON can store")


def loads(text: str) -> Any:
    """``json.loads`` that refuses, with :class:`Unstorable`, what the record cannot store.

    Raises ``json.JSONDecodeError`` for text that is not JSON, and :class:`Unstorable` for
    NaN/Infinity, integers beyond 64 bits, nesting beyond :data:`MAX_DEPTH`, NUL characters
    and unpaired surrogates.
    """
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except RecursionError as exc:  # the C scanner recurses per level
        raise Unstorable(Refusal.TOO_DEEP, f"nested deeper than {MAX_DEPTH} levels") from exc
    return check_json(value)


def escape_text(s: str) -> str:
    """Make any string storable as PostgreSQL text, visibly: NUL becomes ``\\x00`` and an
    unpaired surrogate ``\\udXXX``. For free text the gateway writes itself (dead-letter
    details, topics), where refusing is not an option."""
    if text_problem(s) is None:
        return s
    return s.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def escape_json(value: Any) -> Any:
    """:func:`escape_text` applied to every string (keys too) and non-finite numbers nulled:
    a jsonb column then always takes the value. Recursion is bounded by the caller's data,
    which the gateway built itself."""
    if isinstance(value, str):
        return escape_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {escape_text(str(k)): escape_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_json(v) for v in value]
    return value


# Annotated types the protocol models use, so the Python path (the carer page, the API) refuses
# exactly what the MQTT path does.
StoredText = Annotated[str, AfterValidator(check_text)]
StoredInt = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
StoredJson = Annotated[Any, AfterValidator(check_json)]
StoredTime = Annotated[AwareDatetime, AfterValidator(check_time)]
