"""Per-partition bookkeeping of the worker: engine, offsets, outputs not yet checkpointed.

No Faust or Kafka import: the app feeds it offsets and publishes what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from processor.core import snapshot
from processor.core.alerts import Output, WindowClosed
from processor.core.engine import Engine, EngineConfig
from processor.settings import Settings

# An output ready to publish: topic, key, value, headers (all text: JSON-able for snapshots).
Pending = tuple[str, str | None, str, list[tuple[str, str]] | None]


@dataclass(slots=True)
class PartitionState:
    """One input partition's engine and where it stands in the input."""

    engine: Engine
    applied: int = -1  # offset of the last input record applied to the engine
    replay_until: int = -1  # records at or below this were applied before (re)assignment
    pending: list[Pending] = field(default_factory=list)  # published since last checkpoint
    dirty: bool = False
    writer: snapshot.SnapshotWriter = field(default_factory=snapshot.SnapshotWriter)

    def checkpoint(self) -> bytes:
        """Snapshot for the state topic; clears the pending outputs it now carries."""
        data = self.writer.encode(self.engine, self.applied, [list(p) for p in self.pending])
        self.pending.clear()
        self.dirty = False
        return data

    @classmethod
    def restore(
        cls, data: bytes | None, config: EngineConfig, wall_ms: int
    ) -> tuple[PartitionState, list[Pending]]:
        """The partition as of its last snapshot, and the outputs to publish again."""
        if data is None:
            return cls(Engine(config)), []
        cp = snapshot.decode(data, config, wall_ms)
        pending = [
            (topic, key, value, [(k, v) for k, v in headers] if headers else None)
            for topic, key, value, headers in cp.pending
        ]
        return cls(cp.engine, applied=cp.offset, replay_until=cp.offset), pending


class Router:
    """Where each kind of output goes, as publishable text records."""

    def __init__(self, settings: Settings) -> None:
        self.alerts_topic = settings.alerts_topic
        self.windows_topic = settings.windows_topic

    def route(self, output: Output, emitted_at: int) -> Pending:
        topic = self.windows_topic if isinstance(output, WindowClosed) else self.alerts_topic
        value = orjson.dumps(output.to_record(emitted_at)).decode()
        return topic, output.stream_id, value, None
