"""Event contract v1: decoding and validating raw Kafka record values.

Pure protocol code (no Kafka client): bytes in, a valid event dict or an
:class:`InvalidRecord` with a machine-readable reason out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
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


@cache
def _event_validator() -> Callable[[Any], Any]:
    validator: Callable[[Any], Any] = fastjsonschema.compile(load_schema(EVENT_SCHEMA))
    return validator


_INTEGER_FIELDS = ("v", "ts", "count", "total", "coins", "repeat_count", "gift_id")


def _non_integer_field(event: dict[str, Any]) -> str | None:
    # JSON Schema lets 3.0 pass as an integer; the engine's exact counts need real ints.
    for name in _INTEGER_FIELDS:
        if name in event and type(event[name]) is not int:
            return name
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
    try:
        _event_validator()(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        return InvalidRecord(Reason.CONTRACT, exc.message)
    float_field = _non_integer_field(event)
    if float_field is not None:
        return InvalidRecord(Reason.CONTRACT, f"data.{float_field} must be integer")
    if key is None or key != event["stream_id"].encode():
        shown = "none" if key is None else repr(key[:80])
        return InvalidRecord(Reason.KEY_MISMATCH, f"record key {shown} != stream_id")
    return event
