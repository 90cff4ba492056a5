"""Event contract v1: decoding and validating raw Kafka record values.

Pure protocol code (no Kafka client): bytes in, a valid event dict or an
:class:`InvalidRecord` with a machine-readable reason out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
EVENT_SCHEMA = SCHEMA_DIR / "event.v1.schema.json"
ALERT_SCHEMA = SCHEMA_DIR / "alert.v1.schema.json"


class Reason:
    """Reasons a record goes to the dead-letter topic (the ``livepulse.reason`` header)."""

    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    CONTRACT = "contract_violation"
    KEY_MISMATCH = "key_mismatch"
    LATE = "late"
    AFTER_END = "after_end"
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """Why a record was rejected: a short ``reason`` code and a human ``detail``."""

    reason: str
    detail: str


@cache
def load_schema(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


# The rules of schemas/event.v1.schema.json, hand-compiled: a generic JSON Schema validator
# cost more than everything else per event. A unit test holds the two equal on generated
# events. Integers must be real ints (JSON Schema would let 3.0 and the engine needs exact
# counts). A spec is (kind, a, b): ("int", min, max), ("str", min_len, max_len),
# ("bool", _, _), ("enum", values, _).
Spec = tuple[str, Any, Any]
_ID: Spec = ("str", 1, 200)
EVENT_TYPES = (
    "live_start",
    "like",
    "gift",
    "comment",
    "follow",
    "share",
    "join",
    "viewers",
    "live_end",
)
_BASE_REQUIRED = ("v", "event_id", "type", "stream_id", "creator_id", "ts")
_BASE_SPECS: tuple[tuple[str, Spec], ...] = (
    ("event_id", _ID),
    ("stream_id", _ID),
    ("creator_id", _ID),
    ("ts", ("int", 1_000_000_000_000, 9_999_999_999_999)),
)
_NEEDS_USER = frozenset({"like", "gift", "comment", "follow", "share", "join"})
# per type: (required fields, specs of its fields when present)
_TYPE_RULES: dict[str, tuple[tuple[str, ...], dict[str, Spec]]] = {
    "live_start": ((), {"title": ("str", 0, 1_000)}),
    "like": (
        ("count", "total"),
        {"count": ("int", 1, 15), "total": ("int", 0, 1_000_000_000_000)},
    ),
    "gift": (
        ("gift_id", "gift_name", "coins", "repeat_count", "streakable", "streak_id", "repeat_end"),
        {
            "gift_id": ("int", 0, 2_147_483_647),
            "gift_name": ("str", 0, 200),
            "coins": ("int", 1, 1_000_000),
            "repeat_count": ("int", 1, 100_000),
            "streakable": ("bool", None, None),
            "streak_id": ("str", 0, 200),
            "repeat_end": ("bool", None, None),
        },
    ),
    "comment": (("text",), {"text": ("str", 0, 10_000)}),
    "follow": ((), {}),
    "share": ((), {}),
    "join": ((), {}),
    "viewers": (("count",), {"count": ("int", 0, 1_000_000_000)}),
    "live_end": (("reason",), {"reason": ("enum", ["ended", "suspended"], None)}),
}


def _check(name: str, value: Any, spec: Spec) -> str | None:
    kind, a, b = spec
    if kind == "int":
        if type(value) is not int:
            return f"data.{name} must be integer"
        if value < a:
            return f"data.{name} must be bigger than or equal to {a}"
        if value > b:
            return f"data.{name} must be smaller than or equal to {b}"
    elif kind == "str":
        if type(value) is not str:
            return f"data.{name} must be string"
        if len(value) < a:
            return f"data.{name} must be longer than or equal to {a} characters"
        if len(value) > b:
            return f"data.{name} must be shorter than or equal to {b} characters"
    elif kind == "bool":
        if type(value) is not bool:
            return f"data.{name} must be boolean"
    elif value not in a or type(value) is not str:
        return f"data.{name} must be one of {a}"
    return None


def contract_violation(event: dict[str, Any]) -> str | None:
    """Why ``event`` breaks event contract v1, or None if it keeps it."""
    missing = [name for name in _BASE_REQUIRED if name not in event]
    if missing:
        return f"data must contain {missing} properties"
    v = event["v"]
    if type(v) is not int or v != 1:
        return "data.v must be same as const definition: 1"
    for name, spec in _BASE_SPECS:
        problem = _check(name, event[name], spec)
        if problem:
            return problem
    kind = event["type"]
    rules = _TYPE_RULES.get(kind) if type(kind) is str else None
    if rules is None:
        return f"data.type must be one of {list(EVENT_TYPES)}"
    if "user_id" in event:
        problem = _check("user_id", event["user_id"], _ID)
        if problem:
            return problem
    elif kind in _NEEDS_USER:
        return "data must contain ['user_id'] properties"
    required, specs = rules
    missing = [name for name in required if name not in event]
    if missing:
        return f"data must contain {missing} properties"
    for name, spec in specs.items():
        if name in event:
            problem = _check(name, event[name], spec)
            if problem:
                return problem
    return None


def decode_event(
    value: bytes | None, key: bytes | None = None, max_bytes: int = 65_536
) -> dict[str, Any] | InvalidRecord:
    """Decode and validate one record; never raises on bad input."""
    if value is None:
        return InvalidRecord(Reason.INVALID_JSON, "record has no value (tombstone)")
    if len(value) > max_bytes:
        return InvalidRecord(Reason.TOO_LARGE, f"{len(value)} bytes > limit of {max_bytes}")
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return InvalidRecord(Reason.INVALID_JSON, str(exc))
    if not isinstance(event, dict):
        return InvalidRecord(
            Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(event).__name__}"
        )
    problem = contract_violation(event)
    if problem is not None:
        return InvalidRecord(Reason.CONTRACT, problem)
    if key is None or key != event["stream_id"].encode():
        shown = "none" if key is None else repr(key[:80])
        return InvalidRecord(Reason.KEY_MISMATCH, f"record key {shown} != stream_id")
    return event
