"""The ``livepulse`` command line."""

from __future__ import annotations

import argparse
import signal
import sys

from processor import alerts_cli
from processor.kafka_client import ssl_context
from processor.settings import ConfigError, help_text, load_settings
from processor.simulator import cli as simulator_cli
from processor.worker import cli as worker_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livepulse",
        description="Real-time engagement tiers for live streams, on Kafka.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "settings (environment variables; the same names in lower case, without the\n"
            "LIVEPULSE_ prefix, in a TOML config file):\n" + help_text()
        ),
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML config file (default: $LIVEPULSE_CONFIG)"
    )
    parser.add_argument(
        "--broker", metavar="HOST:PORT", help="Kafka bootstrap servers (default 127.0.0.1:9092)"
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    worker_cli.register(subparsers)
    simulator_cli.register(subparsers)
    alerts_cli.register(subparsers)
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # Until a command installs its own handler (Faust does once it starts), SIGTERM
    # means a clean exit, not a death by signal.
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(config_path=args.config, overrides={"broker": args.broker})
        ssl_context(settings)  # certificate files that do not load are configuration errors
    except ConfigError as exc:
        print(f"livepulse: configuration error: {exc}", file=sys.stderr)
        return 2
    code: int = args.handler(args, settings)
    return code


if __name__ == "__main__":
    sys.exit(main())
