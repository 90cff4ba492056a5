"""Periodic progress lines and a final summary on stderr for long-running commands."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class ProgressReporter:
    """Print ``label: N events, R/s now, A/s avg, H:MM:SS elapsed`` every ``interval_s``."""

    def __init__(
        self,
        label: str,
        *,
        quiet: bool = False,
        interval_s: float = 2.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.quiet = quiet
        self.interval_s = interval_s
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._next = self._started + interval_s
        self._last_time = self._started
        self._last_count = 0

    def start(self) -> None:
        """Restart the clock (call when the first event is about to be sent)."""
        self._started = self._last_time = self._clock()
        self._next = self._started + self.interval_s
        self._last_count = 0

    @property
    def elapsed_s(self) -> float:
        """Seconds since :meth:`start`."""
        return self._clock() - self._started

    def tick(self, count: int) -> None:
        """Report ``count`` events so far if the interval has passed."""
        now = self._clock()
        if now < self._next:
            return
        if not self.quiet:
            rate_now = (count - self._last_count) / max(now - self._last_time, 1e-9)
            rate_avg = count / max(now - self._started, 1e-9)
            self._write(
                f"{count:,} events, {rate_now:,.0f}/s now, {rate_avg:,.0f}/s avg, "
                f"{_duration(now - self._started)} elapsed"
            )
        self._last_time, self._last_count = now, count
        self._next = now + self.interval_s

    def finish(self, count: int, *, interrupted: bool = False, target: str = "") -> None:
        """Print the summary line (also when interrupted)."""
        if self.quiet:
            return
        elapsed = self._clock() - self._started
        rate = count / elapsed if elapsed > 0 else 0.0
        state = "interrupted" if interrupted else "done"
        where = f" -> {target}" if target else ""
        self._write(
            f"{state}: {count:,} events in {_duration(elapsed)} ({elapsed:.1f} s, "
            f"{rate:,.0f}/s avg){where}"
        )

    def message(self, text: str) -> None:
        """Print one free-form line (suppressed when quiet)."""
        if not self.quiet:
            self._write(text)

    def _write(self, text: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        print(f"{self.label}: {text}", file=stream, flush=True)


__all__ = ["ProgressReporter"]
