"""Event contract v1: decoding and validating raw Kafka record values.

Pure protocol code (no Kafka client): bytes in, a typed event (one frozen msgspec Struct per
event ``type``) or an :class:`InvalidRecord` with a machine-readable reason out.

The Structs below are the rules of ``schemas/event.v1.schema.json``, the published contract;
unit tests hold the two equal (every field of every type set to edge values, and generated
events, judged by a JSON Schema validator). Beyond JSON Schema, integers must be real ints
(3.0 and true are rejected: msgspec decodes strictly) and the engine relies on that.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

import msgspec
import msgspec.inspect
from msgspec import Meta, Struct

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
EVENT_SCHEMA = SCHEMA_DIR / "event.v1.schema.json"
ALERT_SCHEMA = (
    SCHEMA_DIR / "alert.v1.schema.json"
)  # written from core/alerts.py by processor.schemas
WINDOW_SCHEMA = SCHEMA_DIR / "window.v1.schema.json"  # likewise


class Reason(StrEnum):
    """Reasons a record goes to the dead-letter topic (the ``livepulse.reason`` header)."""

    TOO_LARGE = "too_large"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    CONTRACT = "contract_violation"
    KEY_MISMATCH = "key_mismatch"
    LATE = "late"
    AFTER_END = "after_end"
    FUTURE = "future_timestamp"  # ``ts`` too far ahead of the record's Kafka timestamp
    PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """Why a record was rejected: a short ``reason`` code and a human ``detail``."""

    reason: Reason
    detail: str


@cache
def load_schema(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


Id = Annotated[str, Meta(min_length=1, max_length=200)]
EpochMs = Annotated[int, Meta(ge=1_000_000_000_000, le=9_999_999_999_999)]


class EventBase(Struct, frozen=True, kw_only=True, tag_field="type", omit_defaults=True, gc=False):
    """Fields every event has. ``type`` is the tag (a class attribute, not a field).

    Unknown extra fields are ignored. All fields are scalars, so instances are left out of
    the cyclic garbage collector (``gc=False``). Fields are keyword-only. An optional field
    that is absent or JSON ``null`` is ``None``, and is left out again by :func:`encode_event`.
    """

    type: ClassVar[str]

    v: Literal[1]
    event_id: Id
    stream_id: Id
    creator_id: Id
    ts: EpochMs  # event time, integer epoch milliseconds UTC


class LiveStart(EventBase, tag="live_start", frozen=True, kw_only=True):
    type: ClassVar[str] = "live_start"
    user_id: Id | None = None
    title: Annotated[str, Meta(max_length=1_000)] | None = None


class Like(EventBase, tag="like", frozen=True, kw_only=True):
    type: ClassVar[str] = "like"
    user_id: Id
    count: Annotated[int, Meta(ge=1, le=15)]
    total: Annotated[int, Meta(ge=0, le=1_000_000_000_000)]  # running room total


class Gift(EventBase, tag="gift", frozen=True, kw_only=True):
    type: ClassVar[str] = "gift"
    user_id: Id
    gift_id: Annotated[int, Meta(ge=0, le=2_147_483_647)]
    gift_name: Annotated[str, Meta(max_length=200)]
    coins: Annotated[int, Meta(ge=1, le=1_000_000)]
    repeat_count: Annotated[int, Meta(ge=1, le=100_000)]
    streakable: bool
    streak_id: Annotated[str, Meta(max_length=200)]
    repeat_end: bool


class Comment(EventBase, tag="comment", frozen=True, kw_only=True):
    type: ClassVar[str] = "comment"
    user_id: Id
    text: Annotated[str, Meta(max_length=10_000)]


class Follow(EventBase, tag="follow", frozen=True, kw_only=True):
    type: ClassVar[str] = "follow"
    user_id: Id


class Share(EventBase, tag="share", frozen=True, kw_only=True):
    type: ClassVar[str] = "share"
    user_id: Id


class Join(EventBase, tag="join", frozen=True, kw_only=True):
    type: ClassVar[str] = "join"
    user_id: Id


class Viewers(EventBase, tag="viewers", frozen=True, kw_only=True):
    type: ClassVar[str] = "viewers"
    user_id: Id | None = None
    count: Annotated[int, Meta(ge=0, le=1_000_000_000)]  # current viewers


class LiveEnd(EventBase, tag="live_end", frozen=True, kw_only=True):
    type: ClassVar[str] = "live_end"
    user_id: Id | None = None
    reason: Literal["ended", "suspended"]


Event: TypeAlias = LiveStart | Like | Gift | Comment | Follow | Share | Join | Viewers | LiveEnd
EVENT_CLASSES: tuple[type[EventBase], ...] = (
    LiveStart,
    Like,
    Gift,
    Comment,
    Follow,
    Share,
    Join,
    Viewers,
    LiveEnd,
)
EVENT_TYPES: tuple[str, ...] = tuple(cls.type for cls in EVENT_CLASSES)

_DECODER: msgspec.json.Decoder[Event] = msgspec.json.Decoder(Event)
_ANY_DECODER: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
_ENCODER = msgspec.json.Encoder()  # the one encoder of every record livepulse writes
# the fields whose msgspec message alone does not say what is expected
_HINTS = {
    "`$.type`": f" (the types are {', '.join(EVENT_TYPES)})",
    "`$.v`": " (this is event contract v1: v must be 1)",
}
# names of the JSON value kinds, for "expected a JSON object, got ..."
_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def decode_event(
    value: bytes | None, key: bytes | None = None, max_bytes: int = 65_536
) -> Event | InvalidRecord:
    """Decode and validate one record; never raises on bad input.

    A valid event must also be keyed by its ``stream_id`` (the topic's partitioning key).
    """
    if value is None:
        return InvalidRecord(Reason.INVALID_JSON, "record has no value (tombstone)")
    if len(value) > max_bytes:
        return InvalidRecord(Reason.TOO_LARGE, f"{len(value)} bytes > limit of {max_bytes}")
    try:
        event = _DECODER.decode(value)
    except msgspec.ValidationError as exc:
        return _why_invalid(value, str(exc))
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        return _not_json(value, exc)
    # msgspec skips unknown fields without checking their UTF-8; the record must be UTF-8.
    if not value.isascii() and (problem := _utf8_problem(value)):
        return InvalidRecord(Reason.INVALID_JSON, problem)
    # msgspec keeps the last value of a duplicated key: rule duplicates out (see _KEYS)
    colons = value.count(b":")
    if colons > _MIN_KEYS[event.__class__] and (dup := _duplicate_key(value, event, colons)):
        return InvalidRecord(Reason.CONTRACT, dup)
    if key is None or key != event.stream_id.encode():
        shown = "none" if key is None else repr(key[:80])
        return InvalidRecord(Reason.KEY_MISMATCH, f"record key {shown} != stream_id")
    return event


# Duplicate keys. ``{"coins":5,...,"coins":1000000}`` is a million coins to msgspec (the last
# value wins) and five to a parser that keeps the first, so an event object with a key twice
# is a contract violation. Most records are ruled out at the cost of one ``bytes.count``:
# outside strings, JSON has exactly one ':' per object member, at any depth, so a record's
# ':' count C is at least the number of members of its top-level object. The decoded event
# proves that many distinct keys present: ``type``, every required field, and the optional
# fields that are not None. When C equals that number, every ':' is one of those keys, each
# written once: no duplicate. Else (a ':' in a string, a null optional field, an unknown
# field), the ':' in the decoded string values are subtracted when the record has no
# backslash (so each string's raw bytes are its decoded text, and hold its ':' exactly);
# and only when that cannot decide either, the top-level keys are read one by one.
def _key_facts(cls: type[EventBase]) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """(keys every event of ``cls`` has, its optional fields, its fields that hold text)."""
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    fields = info.fields
    texts = []
    for f in fields:
        kinds = f.type.types if isinstance(f.type, msgspec.inspect.UnionType) else (f.type,)
        if any(
            isinstance(k, msgspec.inspect.StrType)
            or (isinstance(k, msgspec.inspect.LiteralType) and isinstance(k.values[0], str))
            for k in kinds
        ):
            texts.append(f.name)
    required = sum(1 for f in fields if f.required)
    return 1 + required, tuple(f.name for f in fields if not f.required), tuple(texts)


_KEYS = {cls: _key_facts(cls) for cls in EVENT_CLASSES}
_MIN_KEYS = {cls: facts[0] for cls, facts in _KEYS.items()}
# a JSON string token, or a bracket or ':' outside strings (the record is valid JSON)
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]:]', re.DOTALL)


def _duplicate_key(value: bytes, event: Event, colons: int) -> str:
    """Why ``value`` (a record ``event`` was decoded from, with ``colons`` ':' bytes) is
    invalid because a top-level key appears twice, or "" if none does. Exact: never misses
    a duplicate written in any way (``"co\\u0069ns"`` is ``coins``), never flags a record
    without one."""
    keys, optional, strings = _KEYS[event.__class__]
    for name in optional:
        if getattr(event, name) is not None:
            keys += 1
    if colons == keys:
        return ""
    if b"\\" not in value:
        colons -= sum(text.count(":") for name in strings if (text := getattr(event, name)))
        if colons == keys:
            return ""
    seen: set[str] = set()
    depth = 0
    previous = b""
    for match in _TOKENS.finditer(value):
        token = match[0]
        first = token[0]
        if first == 0x22:  # '"'
            previous = token
        elif first == 0x3A:  # ':' follows a key
            if depth == 1:
                key = json.loads(previous) if b"\\" in previous else previous[1:-1].decode()
                if key in seen:
                    return (
                        f"duplicate key {json.dumps(key)[:100]} in the event object "
                        "(JSON parsers disagree on which of its values counts)"
                    )
                seen.add(key)
        elif first in b"{[":
            depth += 1
        else:
            depth -= 1
    return ""


def _why_invalid(value: bytes, problem: str) -> InvalidRecord:
    """Not valid JSON, or not an object, or (only then) a contract violation ``problem``.

    The typed decoder stops at the first problem, so a contract violation early in a record
    can hide malformed JSON later on: parse the whole record again, untyped (rejects only).
    """
    try:
        parsed = _ANY_DECODER.decode(value)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        return _not_json(value, exc)
    if not isinstance(parsed, dict):
        got = "null" if parsed is None else _JSON_KINDS.get(type(parsed), type(parsed).__name__)
        return InvalidRecord(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {got}")
    return InvalidRecord(Reason.CONTRACT, problem + _HINTS.get(problem.rpartition(" - at ")[2], ""))


def _not_json(value: bytes, exc: Exception) -> InvalidRecord:
    """INVALID_JSON: where the record is not UTF-8 (msgspec says "invalid character" or
    gives a position inside a string), else msgspec's message (malformed, too deep...)."""
    return InvalidRecord(Reason.INVALID_JSON, _utf8_problem(value) or str(exc))


def _utf8_problem(value: bytes) -> str:
    """Where ``value`` is not UTF-8, or "" if it is."""
    try:
        value.decode()
    except UnicodeDecodeError as exc:
        return f"JSON is not valid UTF-8: {exc.reason} at byte {exc.start}"
    return ""


def encode_event(event: Event) -> bytes:
    """The JSON of ``event``, ``type`` first; optional fields that are None are left out."""
    return _ENCODER.encode(event)


def encode(record: object) -> bytes:
    """The JSON of any record livepulse writes (an event, an alert, a closed window): one
    encoder for every output, so they all write numbers and strings the same way."""
    return _ENCODER.encode(record)


def to_event(obj: dict[str, Any]) -> Event:
    """The event of a dict (as tests and the simulator build them), validated like a record.

    Raises :class:`msgspec.ValidationError` if ``obj`` breaks the contract.
    """
    event: Event = msgspec.convert(obj, Event)
    return event
