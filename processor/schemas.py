"""The published JSON Schemas of the outputs, generated from their Structs (``core/alerts.py``).

``python -m processor.schemas`` writes ``schemas/alert.v1.schema.json`` and
``schemas/window.v1.schema.json``; ``python -m processor.schemas --check`` exits 1 if the
checked-in files differ (a unit test does the same). Draft 7, as subscribers' validators
read it: one ``if type is X then <X's object>`` per alert type. Every field is required,
since every field is always written (a Struct default only spares the engine passing it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from processor.contract import ALERT_SCHEMA, WINDOW_SCHEMA
from processor.core.alerts import ALERT_CLASSES, ALERT_TYPES, WindowClosed

DRAFT = "http://json-schema.org/draft-07/schema#"
BASE_ID = "https://livepulse.dev/schemas/"
REF = "#/definitions/{name}"


def _definitions(classes: tuple[type, ...]) -> dict[str, Any]:
    """JSON Schema of ``classes`` and what they refer to, by name; objects require all fields."""
    _, definitions = msgspec.json.schema_components(classes, ref_template=REF)
    for definition in definitions.values():
        if "enum" in definition:  # a compiled enum (Tier under mypyc) has no docstring
            definition.pop("description", None)
        elif "description" in definition:  # a docstring: one line, without indentation
            definition["description"] = " ".join(definition["description"].split())
        properties = definition.get("properties")
        if properties is not None:
            for prop in properties.values():
                prop.pop("default", None)
            definition["required"] = list(properties)
    return definitions


def alert_schema() -> dict[str, Any]:
    """Alert contract v1 (topic live.alerts)."""
    return {
        "$schema": DRAFT,
        "$id": BASE_ID + ALERT_SCHEMA.name,
        "title": "livepulse alert contract v1 (topic live.alerts, key = stream_id)",
        "description": (
            "One JSON object per record. Subscribers de-duplicate on alert_id: the same alert "
            "always has the same id, across restarts and replays. Fields may be added in later "
            "minor revisions and must be ignored; new alert types may be added, so subscribers "
            "must skip types they do not know."
        ),
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(ALERT_TYPES)}},
        "allOf": [
            {
                "if": {"properties": {"type": {"const": name}}},
                "then": {"$ref": REF.format(name=cls.__name__)},
            }
            for name, cls in ALERT_TYPES.items()
        ],
        "definitions": _definitions(ALERT_CLASSES),
    }


def window_schema() -> dict[str, Any]:
    """Closed tumbling windows v1 (topic live.windows)."""
    return {
        "$schema": DRAFT,
        "$id": BASE_ID + WINDOW_SCHEMA.name,
        "title": "livepulse closed tumbling window v1 (topic live.windows, key = stream_id)",
        "allOf": [{"$ref": REF.format(name=WindowClosed.__name__)}],
        "definitions": _definitions((WindowClosed,)),
    }


def rendered() -> dict[Path, str]:
    """Each generated schema file and its text."""
    return {
        path: json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
        for path, schema in ((ALERT_SCHEMA, alert_schema()), (WINDOW_SCHEMA, window_schema()))
    }


def main(argv: list[str]) -> int:
    stale = [path for path, text in rendered().items() if not _holds(path, text)]
    if "--check" in argv:
        for path in stale:
            print(f"{path} is stale: run python -m processor.schemas", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(rendered()[path])
        print(f"wrote {path}")
    return 0


def _holds(path: Path, text: str) -> bool:
    return path.exists() and path.read_text() == text


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
