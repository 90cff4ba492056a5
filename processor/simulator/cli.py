"""``livepulse simulate`` and ``livepulse replay`` subcommands."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from processor.contract import Event, encode_event
from processor.settings import Settings
from processor.simulator.generator import (
    MAX_TS_MS,
    MIN_TS_MS,
    SimulationConfig,
    generate,
    read_ndjson,
    record_key_and_ts,
    write_ndjson,
)
from processor.simulator.producer import BrokerError, Pace, Record, produce
from processor.simulator.progress import ProgressReporter

Handler = Callable[[argparse.Namespace, Settings], int]

DEFAULT_OFFLINE_DURATION_S = 60.0
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BROKER = 2
EXIT_INTERRUPTED = 130

SIMULATE_EPILOG = """\
examples:
  livepulse simulate                               # 20 streams, 500 events/s, until Ctrl-C
  livepulse simulate --streams 50 --rate 2000 --duration 300
  livepulse simulate --fast --events 2000000       # pre-fill the topic as fast as possible
  livepulse simulate --fast --start-ms 1700000000000 --duration 600 --output day.ndjson
  livepulse simulate --creators 30 --lifetime 300  # 30 creators taking turns, ~5 min sessions

Events follow contract v1 (key = stream_id). Realtime runs stamp events with the wall
clock; --fast and --output runs use a virtual clock from --start-ms and are byte-identical
for the same seed and options. --fast and --output default to 60 virtual seconds, ending
now: the events of the recent past, as a backfill (events far ahead of the time they are
sent are dead letters to the worker, and Kafka 4 refuses records over an hour ahead).
"""

REPLAY_EPILOG = """\
examples:
  livepulse replay day.ndjson                      # as fast as possible
  livepulse replay --realtime day.ndjson           # keep the gaps between event ts
  printf 'not json\\n{"v":1}\\n' | livepulse replay -   # feed the dead-letter path

Each line is sent byte for byte, without validation, keyed by its stream_id when the line
is a JSON object with a string stream_id (otherwise with no key).
"""


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


def _epoch_ms(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not MIN_TS_MS <= value <= MAX_TS_MS:
        raise argparse.ArgumentTypeError(
            f"must be epoch milliseconds in [{MIN_TS_MS}, {MAX_TS_MS}], got {value}"
        )
    return value


def _seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` and ``replay`` subcommands to the top-level parser."""
    simulate = subparsers.add_parser(
        "simulate",
        help="generate realistic live-stream events onto the events topic",
        description="Generate contract-v1 live-stream events (likes, gift combos, comments,\n"
        "viewers, hype bursts, heavy-tailed stream popularity) and send them to the\n"
        "events topic, or write them to an NDJSON file.",
        epilog=SIMULATE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    simulate.add_argument(
        "--streams",
        type=_int_at_least(1),
        default=20,
        metavar="N",
        help="concurrent live streams (default: 20)",
    )
    simulate.add_argument(
        "--rate",
        type=_positive_float,
        default=500.0,
        metavar="EPS",
        help="total events per second over all streams (default: 500)",
    )
    simulate.add_argument(
        "--duration",
        type=_positive_float,
        metavar="SECONDS",
        help="stop after this much (virtual) time; default: until Ctrl-C in realtime, "
        f"{DEFAULT_OFFLINE_DURATION_S:.0f} s with --fast or --output unless --events is given",
    )
    simulate.add_argument(
        "--events",
        type=_int_at_least(1),
        metavar="N",
        help="stop after N events in total (the closing live_end events included)",
    )
    simulate.add_argument(
        "--seed", type=_seed, default=1, help="random seed (default: 1); same seed, same events"
    )
    simulate.add_argument(
        "--start-ms",
        type=_epoch_ms,
        metavar="MS",
        help="virtual clock start, epoch ms (default: the run's span before now, so that it "
        "ends now); only with --fast or --output",
    )
    simulate.add_argument(
        "--lifetime",
        type=_positive_float,
        metavar="SECONDS",
        help="mean stream lifetime: streams end and new ones start, keeping --streams live "
        "(default: streams last the whole run)",
    )
    simulate.add_argument(
        "--creators",
        type=_int_at_least(1),
        metavar="N",
        help="a pool of N creators (>= --streams) taking turns to go live, each with her own "
        "popularity and fans; with --lifetime each goes live again and again, several "
        "sessions a day (default: every stream a new creator's)",
    )
    simulate.add_argument(
        "--fast", action="store_true", help="no pacing: send as fast as the producer allows"
    )
    simulate.add_argument(
        "--output",
        metavar="FILE",
        help="write NDJSON to FILE instead of Kafka ('-' for stdout); implies no pacing",
    )
    simulate.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    simulate.set_defaults(handler=_simulate_handler(simulate))

    replay = subparsers.add_parser(
        "replay",
        help="send an NDJSON file's lines verbatim to the events topic",
        description="Send each non-blank line of an NDJSON file, unchanged and unvalidated,\n"
        "to the events topic.",
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("file", metavar="FILE.ndjson", help="file to replay ('-' for stdin)")
    pacing = replay.add_mutually_exclusive_group()
    pacing.add_argument(
        "--fast",
        dest="realtime",
        action="store_false",
        help="send as fast as the producer allows (default)",
    )
    pacing.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        help="keep the gaps between consecutive events' ts",
    )
    replay.add_argument("--quiet", action="store_true", help="no progress output on stderr")
    replay.set_defaults(handler=_replay_handler(replay), realtime=False)


def _simulate_handler(parser: argparse.ArgumentParser) -> Handler:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        offline = args.fast or args.output is not None
        if args.start_ms is not None and not offline:
            parser.error("argument --start-ms: needs --fast or --output (realtime uses now)")
        if args.creators is not None and args.creators < args.streams:
            parser.error(
                f"argument --creators: must be >= --streams ({args.streams}), got "
                f"{args.creators}: a creator is live in one stream at a time"
            )
        return run_simulate(args, settings)

    return handler


def _replay_handler(parser: argparse.ArgumentParser) -> Handler:
    def handler(args: argparse.Namespace, settings: Settings) -> int:
        if args.file != "-" and not Path(args.file).is_file():
            parser.error(f"argument FILE.ndjson: {args.file!r} is not a readable file")
        return run_replay(args, settings)

    return handler


def _config(args: argparse.Namespace, start_ms: int) -> SimulationConfig:
    duration = args.duration
    offline = args.fast or args.output is not None
    if offline and duration is None and args.events is None:
        duration = DEFAULT_OFFLINE_DURATION_S
    return SimulationConfig(
        start_ms=start_ms,
        streams=args.streams,
        rate=args.rate,
        duration_s=duration,
        max_events=args.events,
        seed=args.seed,
        mean_lifetime_s=args.lifetime,
        creators=args.creators,
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _start_ms(args: argparse.Namespace) -> int:
    """Where the virtual clock starts: ``--start-ms``; else now for a realtime run, and for
    an offline one its span before now, so that its events end about now instead of running
    into the future (the span is ``--duration``, or ``--events`` at ``--rate`` if shorter:
    events beyond the base rate come on top)."""
    if args.start_ms is not None:
        return int(args.start_ms)
    now = _now_ms()
    if not (args.fast or args.output is not None):
        return now
    span_s = math.inf if args.duration is None else float(args.duration)
    if args.events is not None:
        span_s = min(span_s, args.events / args.rate)
    if math.isinf(span_s):
        span_s = DEFAULT_OFFLINE_DURATION_S
    return now - math.ceil(span_s * 1000)


def run_simulate(args: argparse.Namespace, settings: Settings) -> int:
    """Handler of ``livepulse simulate``; returns the exit code."""
    if args.output is not None:
        return _simulate_to_file(args)

    def records() -> Iterator[Record]:
        # Built on first use, after the producer connected: realtime ts start at "now".
        for event in generate(_config(args, _start_ms(args))):
            yield event.stream_id.encode(), encode_event(event), event.ts

    pace: Pace = "fast" if args.fast else "realtime"
    return _run_produce("simulate", settings, records(), pace, args.quiet)


def _simulate_to_file(args: argparse.Namespace) -> int:
    progress = ProgressReporter("livepulse simulate", quiet=args.quiet)
    config = _config(args, _start_ms(args))
    counter = _Counter(progress)
    target = "stdout" if args.output == "-" else args.output
    try:
        write_ndjson(counter.wrap(generate(config)), args.output)
    except KeyboardInterrupt:
        progress.finish(counter.count, interrupted=True, target=target)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        print(f"livepulse simulate: error: cannot write {target}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    progress.finish(counter.count, target=target)
    return EXIT_OK


class _Counter:
    def __init__(self, progress: ProgressReporter) -> None:
        self.count = 0
        self._progress = progress

    def wrap(self, events: Iterable[Event]) -> Iterator[Event]:
        tick = self._progress.tick
        for event in events:
            yield event
            self.count += 1
            tick(self.count)


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    """Handler of ``livepulse replay``; returns the exit code."""

    def records() -> Iterator[Record]:
        for line in read_ndjson(args.file):
            key, ts = record_key_and_ts(line)
            yield key, line, ts

    pace: Pace = "realtime" if args.realtime else "fast"
    return _run_produce("replay", settings, records(), pace, args.quiet)


def _run_produce(
    command: str, settings: Settings, records: Iterable[Record], pace: Pace, quiet: bool
) -> int:
    label = f"livepulse {command}"
    progress = ProgressReporter(label, quiet=quiet)
    try:
        result = asyncio.run(produce(settings, records, pace=pace, progress=progress))
    except BrokerError as exc:
        print(f"{label}: error: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except OSError as exc:
        print(f"{label}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"{label}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_INTERRUPTED if result.interrupted else EXIT_OK


__all__ = ["register", "run_replay", "run_simulate"]
