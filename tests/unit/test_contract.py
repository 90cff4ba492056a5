import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from processor.contract import (
    EVENT_SCHEMA,
    InvalidRecord,
    Reason,
    contract_violation,
    decode_event,
    load_schema,
)
from tests.support.events import T0, StreamScript

VALID = StreamScript("s1").likes(T0, 3)


def encode(event: Any) -> bytes:
    return orjson.dumps(event)


def without(field: str) -> dict[str, Any]:
    return {k: v for k, v in VALID.items() if k != field}


@pytest.mark.parametrize(
    ("value", "key", "reason", "detail"),
    [
        (b"{not json", b"s1", Reason.INVALID_JSON, "unexpected character"),
        (b"\xff\xfe", b"s1", Reason.INVALID_JSON, "str is not valid UTF-8"),
        (None, b"s1", Reason.INVALID_JSON, "tombstone"),
        (b"[1, 2]", b"s1", Reason.NOT_AN_OBJECT, "got list"),
        (b'"like"', b"s1", Reason.NOT_AN_OBJECT, "got str"),
        (encode(without("ts")), b"s1", Reason.CONTRACT, "data must contain ['ts']"),
        (encode(without("total")), b"s1", Reason.CONTRACT, "data must contain ['total']"),
        (encode(VALID | {"type": "dance"}), b"s1", Reason.CONTRACT, "data.type must be one of"),
        (encode(VALID | {"count": "3"}), b"s1", Reason.CONTRACT, "data.count must be integer"),
        (encode(VALID | {"count": 3.0}), b"s1", Reason.CONTRACT, "data.count must be integer"),
        (encode(VALID | {"count": True}), b"s1", Reason.CONTRACT, "data.count must be integer"),
        (encode(VALID | {"count": 16}), b"s1", Reason.CONTRACT, "smaller than or equal to 15"),
        (encode(VALID | {"total": -1}), b"s1", Reason.CONTRACT, "bigger than or equal to 0"),
        (encode(VALID | {"ts": 1_700_000_000}), b"s1", Reason.CONTRACT, "data.ts must be bigger"),
        (encode(VALID | {"v": 2}), b"s1", Reason.CONTRACT, "data.v must be same as const"),
        (encode(without("user_id")), b"s1", Reason.CONTRACT, "data must contain ['user_id']"),
        (encode(VALID), b"other", Reason.KEY_MISMATCH, "b'other' != stream_id"),
        (encode(VALID), None, Reason.KEY_MISMATCH, "none != stream_id"),
        (b" " * 70_000, b"s1", Reason.TOO_LARGE, "70000 bytes > limit of 65536"),
    ],
)
def test_invalid_records_get_a_reason(
    value: bytes | None, key: bytes | None, reason: str, detail: str
) -> None:
    result = decode_event(value, key)
    assert isinstance(result, InvalidRecord)
    assert result.reason == reason
    assert detail in result.detail


def test_valid_event_decodes_to_the_same_dict() -> None:
    assert decode_event(encode(VALID), b"s1") == VALID


def test_extra_fields_are_allowed() -> None:
    assert decode_event(encode(VALID | {"region": "eu"}), b"s1") == VALID | {"region": "eu"}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(value: bytes) -> None:
    result = decode_event(value, b"s1")
    assert isinstance(result, InvalidRecord | dict)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(VALID)), json_values))
def test_arbitrary_json_objects_are_valid_or_rejected_with_reason(data: dict[str, Any]) -> None:
    event = VALID | data
    # stdlib json: arbitrary-precision integers are valid JSON that orjson refuses to parse.
    value = json.dumps(event).encode()
    result = decode_event(value, str(event.get("stream_id")).encode())
    if isinstance(result, InvalidRecord):
        assert result.reason in {Reason.CONTRACT, Reason.KEY_MISMATCH, Reason.INVALID_JSON}
        assert result.detail
    else:
        assert type(result["ts"]) is int and type(result["total"]) is int


SCHEMA_VALIDATOR = Draft7Validator(load_schema(EVENT_SCHEMA))
_INT_FIELDS_BY_TYPE = {
    "like": ("count", "total"),
    "gift": ("gift_id", "coins", "repeat_count"),
    "viewers": ("count",),
}
_script = StreamScript("s1")
SAMPLES = [
    _script.start(T0),
    _script.likes(T0, 3),
    _script.gift(T0, 5, 2, True, False),
    _script.comment(T0),
    _script.viewers(T0, 10),
    _script.end(T0),
    {k: v for k, v in _script.comment(T0).items() if k != "text"} | {"type": "follow"},
    {k: v for k, v in _script.comment(T0).items() if k != "text"} | {"type": "share"},
    {k: v for k, v in _script.comment(T0).items() if k != "text"} | {"type": "join"},
]
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
    1_000_000_000_000,
    9_999_999_999_999,
    10_000_000_000_000,
    2_147_483_647,
    2_147_483_648,
    100_000,
    100_001,
    1.0,
    3.0,
    True,
    False,
    "",
    "x",
    "x" * 200,
    "x" * 201,
    "ended",
    "suspended",
    "like",
    "gift",
    None,
    [],
    {},
]
edge_values = st.sampled_from(EDGE_VALUES)


def schema_says_valid(event: dict[str, Any]) -> bool:
    if not SCHEMA_VALIDATOR.is_valid(event):
        return False
    # beyond JSON Schema: integers must be ints, not 3.0 (which the schema accepts)
    ints = ("v", "ts", *_INT_FIELDS_BY_TYPE.get(event["type"], ()))
    return all(type(event[name]) is int for name in ints if name in event)


@settings(max_examples=1_500, deadline=None)
@given(
    st.sampled_from(SAMPLES),
    st.lists(
        st.tuples(st.sampled_from(FIELDS), st.one_of(edge_values, json_values) | st.none()),
        max_size=3,
    ),
    st.lists(st.sampled_from(FIELDS), max_size=2),
)
def test_hand_compiled_rules_equal_the_json_schema(
    sample: dict[str, Any], changes: list[tuple[str, Any]], removals: list[str]
) -> None:
    event = dict(sample)
    for name, value in changes:
        event[name] = value
    for name in removals:
        event.pop(name, None)
    assert (contract_violation(event) is None) == schema_says_valid(event), event


def test_hand_compiled_rules_equal_the_json_schema_on_every_single_change() -> None:
    """Every field of every event type, set to every edge value or removed."""
    values = EDGE_VALUES
    checked = 0
    for sample in SAMPLES:
        for name in FIELDS:
            variants = [{k: v for k, v in sample.items() if k != name}]
            variants += [sample | {name: value} for value in values]
            for event in variants:
                assert (contract_violation(event) is None) == schema_says_valid(event), event
                checked += 1
    assert checked == len(SAMPLES) * len(FIELDS) * (len(values) + 1)
