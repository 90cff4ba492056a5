import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processor.contract import InvalidRecord, Reason, decode_event
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
