import json
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from processor import schemas
from processor.contract import (
    EVENT_CLASSES,
    EVENT_SCHEMA,
    EVENT_TYPES,
    Comment,
    Event,
    EventBase,
    Follow,
    Gift,
    InvalidRecord,
    Join,
    Like,
    LiveEnd,
    LiveStart,
    Reason,
    Share,
    Viewers,
    decode_event,
    encode_event,
    load_schema,
    to_event,
)
from processor.core.alerts import ALERT_CLASSES, ALERT_TYPES, type_of
from tests.support.events import T0, StreamScript, typed

VALID = StreamScript("s1").likes(T0, 3)
GIFT = StreamScript("s1").gift(T0, 5, 2, True, False)
END = StreamScript("s1").end(T0)
COMMENT = StreamScript("s1").comment(T0)


def encode(event: Any) -> bytes:
    return orjson.dumps(event)


def without(field: str, event: dict[str, Any] = VALID) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != field}


def user_event(kind: str) -> dict[str, Any]:
    """A follow, share or join (events with no fields of their own)."""
    return without("text", StreamScript("s1").comment(T0)) | {"type": kind}


# Latin-1 bytes in an unknown field (which msgspec skips) and in a known one
NOT_UTF8_EXTRA = encode(VALID)[:-1] + b',"x": "\xff"}'
NOT_UTF8_USER = encode(VALID | {"user_id": "u\xe9"}).replace(b"\xc3\xa9", b"\xe9")
_TYPES_HINT = (
    "(the types are live_start, like, gift, comment, follow, share, join, viewers, live_end)"
)


@pytest.mark.parametrize(
    ("value", "key", "reason", "detail"),
    [
        # not JSON (the whole record is checked, even after a contract violation)
        (
            b"{not json",
            b"s1",
            Reason.INVALID_JSON,
            "JSON is malformed: object keys must be strings (byte 1)",
        ),
        (
            b"\xff\xfe",
            b"s1",
            Reason.INVALID_JSON,
            "JSON is not valid UTF-8: invalid start byte at byte 0",
        ),
        (None, b"s1", Reason.INVALID_JSON, "record has no value (tombstone)"),
        (b"", b"s1", Reason.INVALID_JSON, "Input data was truncated"),
        (encode(VALID)[:-1], b"s1", Reason.INVALID_JSON, "Input data was truncated"),
        (
            encode(VALID) + b" x",
            b"s1",
            Reason.INVALID_JSON,
            "JSON is malformed: trailing characters",
        ),
        (
            encode(VALID | {"v": 2})[:-1] + b',"x": [1,}',
            b"s1",
            Reason.INVALID_JSON,
            "JSON is malformed: invalid character",
        ),
        (
            NOT_UTF8_EXTRA,
            b"s1",
            Reason.INVALID_JSON,
            f"JSON is not valid UTF-8: invalid start byte at byte {NOT_UTF8_EXTRA.index(0xFF)}",
        ),
        (
            NOT_UTF8_USER,
            b"s1",
            Reason.INVALID_JSON,
            f"JSON is not valid UTF-8: invalid continuation byte at byte {NOT_UTF8_USER.index(0xE9)}",
        ),
        (b'{"x":' * 5_000, b"s1", Reason.INVALID_JSON, "maximum recursion depth exceeded"),
        (b"[" * 5_000, b"s1", Reason.INVALID_JSON, "maximum recursion depth exceeded"),
        # JSON, but not an object
        (b"[1, 2]", b"s1", Reason.NOT_AN_OBJECT, "expected a JSON object, got array"),
        (b'"like"', b"s1", Reason.NOT_AN_OBJECT, "expected a JSON object, got string"),
        (b"3.5", b"s1", Reason.NOT_AN_OBJECT, "expected a JSON object, got number"),
        (b"true", b"s1", Reason.NOT_AN_OBJECT, "expected a JSON object, got boolean"),
        (b" null ", b"s1", Reason.NOT_AN_OBJECT, "expected a JSON object, got null"),
        # contract violations
        (b"{}", b"s1", Reason.CONTRACT, "Object missing required field `type`"),
        (encode(without("type")), b"s1", Reason.CONTRACT, "Object missing required field `type`"),
        (
            encode(VALID | {"type": "dance"}),
            b"s1",
            Reason.CONTRACT,
            f"Invalid value 'dance' - at `$.type` {_TYPES_HINT}",
        ),
        (
            encode(VALID | {"type": None}),
            b"s1",
            Reason.CONTRACT,
            f"Expected `str` - at `$.type` {_TYPES_HINT}",
        ),
        (encode(without("v")), b"s1", Reason.CONTRACT, "Object missing required field `v`"),
        (
            encode(VALID | {"v": 2}),
            b"s1",
            Reason.CONTRACT,
            "Invalid enum value 2 - at `$.v` (this is event contract v1: v must be 1)",
        ),
        (
            encode(VALID | {"v": True}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int`, got `bool` - at `$.v`",
        ),
        (
            encode(VALID | {"v": "1"}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int`, got `str` - at `$.v`",
        ),
        (encode(without("ts")), b"s1", Reason.CONTRACT, "Object missing required field `ts`"),
        (
            encode(VALID | {"ts": 1_700_000_000}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int` >= 1000000000000 - at `$.ts`",
        ),
        (
            encode(VALID | {"ts": None}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int`, got `null` - at `$.ts`",
        ),
        (
            encode(VALID | {"event_id": "x" * 201}),
            b"s1",
            Reason.CONTRACT,
            "Expected `str` of length <= 200 - at `$.event_id`",
        ),
        (
            encode(without("stream_id")),
            b"s1",
            Reason.CONTRACT,
            "Object missing required field `stream_id`",
        ),
        (
            encode(without("user_id")),
            b"s1",
            Reason.CONTRACT,
            "Object missing required field `user_id`",
        ),
        (
            encode(VALID | {"user_id": None}),
            b"s1",
            Reason.CONTRACT,
            "Expected `str`, got `null` - at `$.user_id`",
        ),
        (
            encode(VALID | {"user_id": ""}),
            b"s1",
            Reason.CONTRACT,
            "Expected `str` of length >= 1 - at `$.user_id`",
        ),
        (encode(without("total")), b"s1", Reason.CONTRACT, "Object missing required field `total`"),
        (
            encode(VALID | {"count": "3"}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int`, got `str` - at `$.count`",
        ),
        (
            encode(VALID | {"count": 3.0}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int`, got `float` - at `$.count`",
        ),
        (
            encode(VALID | {"count": True}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int`, got `bool` - at `$.count`",
        ),
        (
            encode(VALID | {"count": 16}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int` <= 15 - at `$.count`",
        ),
        (
            encode(VALID | {"count": 0}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int` >= 1 - at `$.count`",
        ),
        (
            encode(VALID | {"total": -1}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int` >= 0 - at `$.total`",
        ),
        (
            encode(VALID | {"total": 10**12 + 1}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int` <= 1000000000000 - at `$.total`",
        ),
        (
            json.dumps(VALID | {"total": 10**30}).encode(),
            b"s1",
            Reason.CONTRACT,
            "Expected `int` <= 1000000000000 - at `$.total`",
        ),
        (
            encode(GIFT | {"streakable": 1}),
            b"s1",
            Reason.CONTRACT,
            "Expected `bool`, got `int` - at `$.streakable`",
        ),
        (
            encode(GIFT | {"coins": -5}),
            b"s1",
            Reason.CONTRACT,
            "Expected `int` >= 1 - at `$.coins`",
        ),
        (
            encode(without("repeat_end", GIFT)),
            b"s1",
            Reason.CONTRACT,
            "Object missing required field `repeat_end`",
        ),
        (
            encode(END | {"reason": "paused"}),
            b"s1",
            Reason.CONTRACT,
            "Invalid enum value 'paused' - at `$.reason`",
        ),
        (
            encode(COMMENT | {"text": "x" * 10_001}),
            b"s1",
            Reason.CONTRACT,
            "Expected `str` of length <= 10000 - at `$.text`",
        ),
        # a second "type" cannot turn a like into a gift
        (
            encode(VALID)[:-1] + b',"type":"gift"}',
            b"s1",
            Reason.CONTRACT,
            "Invalid value 'gift' - at `$.type`",
        ),
        # a valid event, but not keyed by its stream
        (encode(VALID), b"other", Reason.KEY_MISMATCH, "record key b'other' != stream_id"),
        (encode(VALID), None, Reason.KEY_MISMATCH, "record key none != stream_id"),
        (encode(VALID), b"", Reason.KEY_MISMATCH, "record key b'' != stream_id"),
        (b" " * 70_000, b"s1", Reason.TOO_LARGE, "70000 bytes > limit of 65536"),
        (b"{" * 65_537, b"s1", Reason.TOO_LARGE, "65537 bytes > limit of 65536"),
    ],
)
def test_invalid_records_get_a_reason(
    value: bytes | None, key: bytes | None, reason: Reason, detail: str
) -> None:
    result = decode_event(value, key)
    assert isinstance(result, InvalidRecord)
    assert result.reason is reason
    assert detail in result.detail, result.detail


def test_size_limit_is_checked_before_parsing() -> None:
    small = decode_event(encode(VALID), b"s1", max_bytes=100)
    assert small == InvalidRecord(Reason.TOO_LARGE, f"{len(encode(VALID))} bytes > limit of 100")
    assert isinstance(decode_event(encode(VALID), b"s1", max_bytes=len(encode(VALID))), Like)


def test_reasons_are_the_dead_letter_header_strings() -> None:
    assert {reason.value for reason in Reason} == {
        "too_large",
        "invalid_json",
        "not_an_object",
        "contract_violation",
        "key_mismatch",
        "future_timestamp",
        "late",
        "after_end",
        "processing_error",
    }
    assert Reason("contract_violation") is Reason.CONTRACT
    assert str(Reason.CONTRACT) == "contract_violation" and f"{Reason.LATE}" == "late"


_script = StreamScript("s1")
SAMPLES = [
    _script.start(T0),
    _script.likes(T0, 3),
    _script.gift(T0, 5, 2, True, False),
    _script.comment(T0),
    user_event("follow"),
    user_event("share"),
    user_event("join"),
    _script.viewers(T0, 10),
    _script.end(T0),
]


def test_event_classes_and_tags() -> None:
    assert EVENT_TYPES == (
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
    assert (LiveStart, Like, Gift, Comment, Follow, Share, Join, Viewers, LiveEnd) == EVENT_CLASSES
    assert tuple(s["type"] for s in SAMPLES) == EVENT_TYPES
    assert tuple(load_schema(EVENT_SCHEMA)["properties"]["type"]["enum"]) == EVENT_TYPES
    for cls in EVENT_CLASSES:
        assert cls.type == cls.__struct_config__.tag  # the class attribute is the wire tag
        config = cls.__struct_config__
        assert config.tag_field == "type" and config.frozen and config.omit_defaults
        assert not config.gc  # scalars only: no reference cycles
        assert cls.__struct_fields__[:5] == ("v", "event_id", "stream_id", "creator_id", "ts")
        assert "type" not in cls.__struct_fields__
    assert Event == LiveStart | Like | Gift | Comment | Follow | Share | Join | Viewers | LiveEnd


@pytest.mark.parametrize("sample", SAMPLES, ids=EVENT_TYPES)
def test_every_type_decodes_to_its_class_with_its_fields(sample: dict[str, Any]) -> None:
    event = decode_event(encode(sample), b"s1")
    cls = EVENT_CLASSES[EVENT_TYPES.index(sample["type"])]
    assert type(event) is cls and isinstance(event, EventBase)
    assert event.type == sample["type"]
    fields = {name: getattr(event, name) for name in cls.__struct_fields__}
    assert {k: v for k, v in fields.items() if v is not None} | {"type": event.type} == sample
    assert to_event(sample) == event == typed(sample)
    with pytest.raises(AttributeError):
        event.ts = T0 + 1  # type: ignore[misc]


def test_field_values_of_each_type() -> None:
    script = StreamScript("s9", creator_id="c9")
    start = decode_event(encode(script.start(T0)), b"s9")
    assert start == LiveStart(
        v=1, event_id="s9-0", stream_id="s9", creator_id="c9", ts=T0, title="hello"
    )
    assert start.user_id is None
    like = decode_event(encode(script.likes(T0 + 1, 7, dropped=2)), b"s9")
    assert isinstance(like, Like)
    assert (like.user_id, like.count, like.total, like.ts) == ("u-1", 7, 9, T0 + 1)
    gift = decode_event(encode(script.gift(T0, 1, 3, True, True, streak="k")), b"s9")
    assert isinstance(gift, Gift)
    assert (gift.gift_id, gift.gift_name, gift.coins, gift.repeat_count) == (5655, "Rose", 1, 3)
    assert (gift.streakable, gift.streak_id, gift.repeat_end) == (True, "k", True)
    comment = decode_event(encode(script.comment(T0, "héllo 😀")), b"s9")
    assert isinstance(comment, Comment) and comment.text == "héllo 😀"
    viewers = decode_event(encode(script.viewers(T0, 0)), b"s9")
    assert isinstance(viewers, Viewers) and (viewers.count, viewers.user_id) == (0, None)
    end = decode_event(encode(script.end(T0) | {"reason": "suspended"}), b"s9")
    assert isinstance(end, LiveEnd) and end.reason == "suspended"


@pytest.mark.parametrize("sample", SAMPLES, ids=EVENT_TYPES)
def test_encode_event_round_trips(sample: dict[str, Any]) -> None:
    event = to_event(sample)
    data = encode_event(event)
    assert orjson.loads(data) == sample
    assert data.startswith(b'{"type":"%s",' % sample["type"].encode())
    assert decode_event(data, b"s1") == event
    assert SCHEMA_VALIDATOR.is_valid(orjson.loads(data))


def test_extra_fields_are_ignored() -> None:
    extra = VALID | {"region": "eu", "meta": {"a": [1, 2.5, None, {"b": "x\xe9"}]}, "flag": True}
    assert decode_event(encode(extra), b"s1") == decode_event(encode(VALID), b"s1")
    assert to_event(extra) == to_event(VALID)
    assert b"region" not in encode_event(to_event(extra))
    # known fields of other types are extra fields too
    assert decode_event(encode(COMMENT | {"count": "many", "title": 5}), b"s1") == to_event(COMMENT)


def test_null_optional_fields_are_absent() -> None:
    start = _script.start(T0)
    assert to_event(start | {"user_id": None, "title": None}) == to_event(without("title", start))
    viewers = _script.viewers(T0, 5)
    assert decode_event(encode(viewers | {"user_id": None}), b"s1") == to_event(viewers)
    assert encode_event(to_event(viewers | {"user_id": None})) == encode_event(to_event(viewers))
    with_user = to_event(viewers | {"user_id": "u-7"})
    assert isinstance(with_user, Viewers) and with_user.user_id == "u-7"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"count": 3.0}, "Expected `int`, got `float` - at `$.count`"),
        ({"count": True}, "Expected `int`, got `bool` - at `$.count`"),
        ({"ts": float(T0)}, "Expected `int`, got `float` - at `$.ts`"),
        ({"v": 1.0}, "Expected `int`, got `float` - at `$.v`"),
        ({"type": "dance"}, "Invalid value 'dance' - at `$.type`"),
        ({"user_id": None}, "Expected `str`, got `null` - at `$.user_id`"),
    ],
)
def test_to_event_is_strict(change: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message.replace("$", r"\$")):
        to_event(VALID | change)


def test_to_event_rejects_a_bool_as_a_bool_field_only() -> None:
    gift = to_event(GIFT | {"streakable": False})
    assert isinstance(gift, Gift) and gift.streakable is False
    with pytest.raises(msgspec.ValidationError, match="Expected `bool`, got `int`"):
        to_event(GIFT | {"repeat_end": 0})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    result = decode_event(value, b"s1")
    assert isinstance(result, InvalidRecord)
    assert result.reason in {Reason.INVALID_JSON, Reason.NOT_AN_OBJECT, Reason.CONTRACT}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VALID)), json_values))
def test_arbitrary_json_objects_are_valid_or_rejected_with_reason(data: dict[str, Any]) -> None:
    event = VALID | data
    # stdlib json: arbitrary-precision integers, Infinity and lone surrogates (\ud800, which
    # msgspec refuses as invalid JSON) all come out
    value = json.dumps(event).encode()
    result = decode_event(value, str(event.get("stream_id")).encode())
    if isinstance(result, InvalidRecord):
        assert result.reason in {Reason.CONTRACT, Reason.KEY_MISMATCH, Reason.INVALID_JSON}
        assert result.detail
    else:
        assert isinstance(result, Like)
        assert type(result.ts) is int and type(result.total) is int


# The Structs must keep the rules of the published JSON Schema: Draft7Validator is the judge.
SCHEMA_VALIDATOR = Draft7Validator(load_schema(EVENT_SCHEMA))
_INT_FIELDS_BY_TYPE = {
    "like": ("count", "total"),
    "gift": ("gift_id", "coins", "repeat_count"),
    "viewers": ("count",),
}
FIELDS = sorted({k for sample in SAMPLES for k in sample} | {"title", "reason", "count"})
EDGE_VALUES: list[Any] = [
    0,
    1,
    15,
    16,
    -1,
    200,
    201,
    1_000_000,
    1_000_001,
    1_000_000_000,
    1_000_000_001,
    1_000_000_000_000,
    1_000_000_000_001,
    999_999_999_999,
    9_999_999_999_999,
    10_000_000_000_000,
    2_147_483_647,
    2_147_483_648,
    100_000,
    100_001,
    10**30,
    1.0,
    3.0,
    True,
    False,
    "",
    "x",
    "1",
    "x" * 200,
    "x" * 201,
    "é" * 200,
    "😀" * 200,  # lengths count characters (code points), not UTF-8 bytes
    "😀" * 201,
    "x" * 1_000,
    "x" * 1_001,
    "x" * 10_000,
    "x" * 10_001,
    "ended",
    "suspended",
    "Ended",
    *EVENT_TYPES,
    None,
    [],
    ["like"],
    {},
]
edge_values = st.sampled_from(EDGE_VALUES)


def schema_says_valid(event: dict[str, Any]) -> bool:
    if not SCHEMA_VALIDATOR.is_valid(event):
        return False
    # beyond JSON Schema: integers must be ints, not 3.0 (which the schema accepts)
    ints = ("v", "ts", *_INT_FIELDS_BY_TYPE.get(event["type"], ()))
    return all(type(event[name]) is int for name in ints if name in event)


def structs_say_valid(event: dict[str, Any]) -> bool:
    """The verdict of the Structs, through to_event and (when it is JSON) decode_event."""
    try:
        to_event(event)
        converted = True
    except msgspec.ValidationError:
        converted = False
    try:
        value = json.dumps(event, ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, UnicodeEncodeError):  # Infinity, lone surrogates: not JSON
        return converted
    stream_id = event.get("stream_id")
    key = stream_id.encode() if isinstance(stream_id, str) else b""
    decoded = not isinstance(decode_event(value, key, max_bytes=1 << 20), InvalidRecord)
    assert decoded == converted, event
    return decoded


@settings(max_examples=1_500, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(st.sampled_from(FIELDS), st.one_of(edge_values, json_values) | st.none()),
        max_size=3,
    ),
    st.lists(st.sampled_from(FIELDS), max_size=2),
)
def test_structs_equal_the_json_schema(
    sample: dict[str, Any], changes: list[tuple[str, Any]], removals: list[str]
) -> None:
    event = dict(sample)
    for name, value in changes:
        event[name] = value
    for name in removals:
        event.pop(name, None)
    assert structs_say_valid(event) == schema_says_valid(event), event


def test_structs_equal_the_json_schema_on_every_single_change() -> None:
    """Every field of every event type, set to every edge value or removed."""
    checked = valid = 0
    for sample in SAMPLES:
        assert structs_say_valid(sample) and schema_says_valid(sample), sample
        for name in FIELDS:
            variants = [{k: v for k, v in sample.items() if k != name}]
            variants += [sample | {name: value} for value in EDGE_VALUES]
            for event in variants:
                verdict = schema_says_valid(event)
                assert structs_say_valid(event) == verdict, event
                checked += 1
                valid += verdict
    assert checked == len(SAMPLES) * len(FIELDS) * (len(EDGE_VALUES) + 1)
    assert 0 < valid < checked


# -- duplicate keys ----------------------------------------------------------------------


def escaped(name: str) -> str:
    """``name`` as a JSON string with every character a \\u escape (UTF-16 units)."""
    units = name.encode("utf-16-be")
    return (
        '"' + "".join(f"\\u{units[i]:02x}{units[i + 1]:02x}" for i in range(0, len(units), 2)) + '"'
    )


def raw(pairs: list[tuple[str, Any]], sep: str = ":", escape: str = "") -> bytes:
    """An object written member by member, duplicates and all; keys in ``escape`` are
    written with each letter as a \\u escape."""

    def key(name: str) -> str:
        return escaped(name) if name in escape else json.dumps(name)

    return ("{" + ",".join(key(k) + sep + json.dumps(v) for k, v in pairs) + "}").encode()


GIFT_PAIRS = list(GIFT.items())
LIKE_PAIRS = list(VALID.items())
START_PAIRS = list(StreamScript("s1").start(T0).items())
COMMENT_PAIRS = list(COMMENT.items())


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (raw([*GIFT_PAIRS, ("coins", 1_000_000)]), "coins"),  # the last one would win
        (raw([("coins", 1_000_000), *GIFT_PAIRS]), "coins"),  # the first one would win
        (raw([*GIFT_PAIRS, ("coins", 5)]), "coins"),  # the same value twice
        (raw([*GIFT_PAIRS[:3], ("type", "gift"), *GIFT_PAIRS[3:]]), "type"),
        (raw(GIFT_PAIRS)[:-1] + b',"co\\u0069ns":1000000}', "coins"),
        (raw([*GIFT_PAIRS, ("coins", 7)], escape="coins"), "coins"),
        (raw([*LIKE_PAIRS, ("total", 10**9)], sep=" : "), "total"),
        (raw([*LIKE_PAIRS, ("note", "at 10:30"), ("count", 15)]), "count"),
        (raw([*LIKE_PAIRS, ("x", 1), ("x", 2)]), "x"),  # unknown fields too
        (raw([*START_PAIRS, ("user_id", None), ("user_id", "u-9")]), "user_id"),
        (raw([*START_PAIRS, ("title", None)]), "title"),  # null: the value read is None
        (raw([*COMMENT_PAIRS, ("text", 'he said: "hi": ok')]), "text"),
        (raw([*COMMENT_PAIRS, ("user_id", "u:\u00e9:\u2603")]), "user_id"),
        # a ':' escaped in a string: no raw ':' for it, so the string's text cannot be used
        (raw(COMMENT_PAIRS[:-1])[:-1] + b',"text":"a\\u003ab","user_id":"u-2"}', "user_id"),
        (raw(COMMENT_PAIRS)[:-1] + b',"x":{"user_id":"a"},"user_id":"u-2"}', "user_id"),
    ],
)
def test_a_key_written_twice_is_a_contract_violation(value: bytes, name: str) -> None:
    assert json.loads(value)  # valid JSON: only the duplicate is wrong
    result = decode_event(value, b"s1")
    assert result == InvalidRecord(
        Reason.CONTRACT,
        f'duplicate key "{name}" in the event object '
        "(JSON parsers disagree on which of its values counts)",
    )


@pytest.mark.parametrize(
    "value",
    [
        raw(GIFT_PAIRS),
        raw(GIFT_PAIRS, sep=" : "),
        json.dumps(GIFT, indent=2).encode(),
        raw([*COMMENT_PAIRS[:-1], ("text", 'said "a": \\"b\\": c:d')]),
        raw([*COMMENT_PAIRS[:-1], ("text", '{"user_id":"x","text":"y"}')]),
        raw(COMMENT_PAIRS)[:-1] + b',"x":"\\u0022user_id\\u0022:\\u0022"}',
        raw(COMMENT_PAIRS)[:-1] + b',"co\\u0069ns":1,"coin":2}',  # coins, coin: two keys
        raw([*COMMENT_PAIRS, ("a:b", 1), ("meta", {"user_id": 1, "x": [{"y": ":"}]})]),
        raw(LIKE_PAIRS)[:-1] + b',"n":{"k":1,"k":2},"l":[{"k":1},{"k":1}]}',
        raw([*START_PAIRS[:-1], ("title", None), ("user_id", None)]),
        raw([*START_PAIRS, ("user_id", "host:1")]),
        encode(StreamScript("s1").comment(T0) | {"text": "caf\u00e9: 10:30 \U0001f525"}),
    ],
)
def test_no_key_written_twice_is_not_a_duplicate(value: bytes) -> None:
    result = decode_event(value, b"s1")
    assert not isinstance(result, InvalidRecord), result


_texts = st.text(st.characters(blacklist_categories=("Cs",)) | st.sampled_from('":\\{}'))
_extra_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | _texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_texts, children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(st.tuples(_texts, _extra_values), max_size=3),
    st.data(),
    st.sampled_from([":", " : ", ": ", "\n:\t"]),
    st.booleans(),
)
def test_duplicate_keys_are_found_exactly(
    sample: dict[str, Any],
    extra: list[tuple[str, Any]],
    data: st.DataObject,
    sep: str,
    ascii_only: bool,
) -> None:
    """Whatever the spacing, escapes and extra members: a record is a duplicate-key
    contract violation exactly when the standard library sees a top-level key twice."""
    pairs = list(sample.items()) + [(k, v) for k, v in extra if k not in sample]
    for _ in range(data.draw(st.integers(0, 2))):
        member = data.draw(st.sampled_from(pairs))
        pairs.insert(data.draw(st.integers(0, len(pairs))), member)
    escapes = data.draw(st.sets(st.sampled_from(sorted({k for k, _ in pairs}))))

    def key(name: str) -> str:
        return escaped(name) if name in escapes else json.dumps(name, ensure_ascii=ascii_only)

    value = (
        "{" + ",".join(key(k) + sep + json.dumps(v, ensure_ascii=ascii_only) for k, v in pairs)
    ).encode() + b"}"
    members = json.loads(value, object_pairs_hook=list)
    twice = len(members) != len({k for k, _ in members})
    result = decode_event(value, sample["stream_id"].encode())
    if twice:
        assert isinstance(result, InvalidRecord) and result.reason is Reason.CONTRACT, result
        assert result.detail.startswith("duplicate key "), result
    else:
        assert result == to_event(sample)


# --- the output contracts: schemas generated from the Structs of core/alerts.py -------------


def test_checked_in_output_schemas_are_the_generated_ones() -> None:
    """schemas/alert.v1 and window.v1 are written by ``python -m processor.schemas``: the
    checked-in files cannot drift from the Structs the worker encodes."""
    for path, text in schemas.rendered().items():
        assert path.read_text() == text, f"{path.name} is stale: run python -m processor.schemas"
    assert schemas.main(["--check"]) == 0


def test_the_alert_schema_lists_every_alert_type_of_the_union() -> None:
    schema = schemas.alert_schema()
    assert schema["properties"]["type"]["enum"] == list(ALERT_TYPES)
    assert [type_of(cls) for cls in ALERT_CLASSES] == list(ALERT_TYPES)
    assert {"tier_changed", "stream_ended", "spike", "goal_reached"} <= set(ALERT_TYPES)
