"""Who sent what in one minute of a stream, sealed into bytes once the minute is closed. Pure.

A stream keeps a :class:`~processor.core.contributors.Summary` for each minute (tumbling
window) of its tier window, so the window's top users can be added up when an alert needs
them. A minute stops changing once stream time passes its end plus the grace period: its
events after that are late. From then on it is held sealed, as the MessagePack bytes of a
:class:`PaneRecord`: a few dozen bytes for a minute with a liker and a gifter instead of
several hundred as objects, and a checkpoint copies them as they are. An alert that needs
them (a tier change, a few a stream) unseals them.

A stream's sealed minutes are held together, as the MessagePack array of their records
(:func:`pack`): one bytes object instead of one per minute saves about 40 B a minute.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from processor.core.contributors import Summary


class PaneRecord(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One minute's summary, as a checkpoint and a sealed pane hold it (a MessagePack array)."""

    start: int
    exact: bool
    likers: dict[str, int]  # user -> likes
    gifters: dict[str, tuple[int, int]]  # user -> coins, gifts


class _Start(msgspec.Struct, array_like=True):
    start: int  # a PaneRecord's first field; the rest is skipped


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PaneRecord)
_start_decoder = msgspec.msgpack.Decoder(_Start)
_minutes_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])


def seal(start: int, summary: Summary) -> bytes:
    """The bytes of the minute starting at ``start``."""
    # the summary's own dicts: encoded at once, so no copy is needed
    record = PaneRecord(start, summary.exact, summary.liker_map(), summary.gifter_map())
    return _encoder.encode(record)


def start_of(sealed: bytes | msgspec.Raw) -> int:
    """The start of a sealed minute, reading nothing else."""
    return _start_decoder.decode(sealed).start


def unseal(sealed: bytes | msgspec.Raw) -> tuple[int, Summary]:
    """The start and the summary of a sealed minute (raises ``msgspec.DecodeError`` or
    ``msgspec.ValidationError`` on bytes that are not one)."""
    record = _decoder.decode(sealed)
    return record.start, Summary.restore(record.exact, record.likers, record.gifters, record.start)


def pack(minutes: Sequence[bytes | msgspec.Raw]) -> bytes | None:
    """Sealed minutes (oldest first) held together; None for none."""
    if not minutes:
        return None
    return _encoder.encode([m if isinstance(m, msgspec.Raw) else msgspec.Raw(m) for m in minutes])


def minutes_of(packed: bytes | None) -> list[msgspec.Raw]:
    """The sealed minutes :func:`pack` held together, each as its record's bytes, oldest
    first (``msgspec.Raw`` views, no copies)."""
    return _minutes_decoder.decode(packed) if packed else []
