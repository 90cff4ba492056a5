"""One settings object for every livepulse command, each setting declared once.

A setting is one field of :class:`Settings`: its name (the config file key; the environment
variable is ``LIVEPULSE_`` and the name in upper case), its type, and :func:`setting` with
its default, its help text (Markdown, as the README's configuration table shows it) and
the rule its value must follow; a setting the engine reads also names the
:class:`~processor.core.engine.EngineConfig` field it sets. ``livepulse --help``, the README
table (:func:`readme_table`, kept equal by a unit test) and the engine's configuration
(:func:`engine_values`) all come from these declarations.

Precedence, lowest first: built-in defaults, the TOML config file (``--config`` or
``LIVEPULSE_CONFIG``), ``LIVEPULSE_*`` environment variables. A bad value raises
:class:`ConfigError` naming the setting, so start-up stops with a clear message; every
check is made here (:func:`_validate`), the engine checks nothing again.
"""

# ruff: noqa: RUF001  (the help texts are prose, typographic signs meant)

from __future__ import annotations

import dataclasses
import os
import re
import textwrap
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ENV_PREFIX = "LIVEPULSE_"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PROCESSING_GUARANTEES = ("exactly_once", "at_least_once")
# The default commit interval of each guarantee. exactly_once: a read_committed subscriber
# sees an alert when its transaction commits, so the interval is its latency. at_least_once
# publishes at once; the interval only bounds what a crash replays, and every commit
# checkpoints the streams that changed in it: on the heavy workload nearly all of them, so
# 5 s costs 0.73x the CPU of 1 s (README, Benchmarks).
COMMIT_INTERVAL_SECONDS = {"exactly_once": 1.0, "at_least_once": 5.0}
COMPRESSIONS = ("none", "lz4", "zstd", "snappy", "gzip")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(ValueError):
    """A configuration value is missing, malformed or out of range."""


@dataclass(frozen=True, slots=True)
class Rule:
    """What a setting's value must be: ``check`` says whether it is; ``expected`` says
    what it should be, in an error message."""

    check: Callable[[Any], bool]
    expected: str


def _same(value: Any) -> Any:
    return value


def _milliseconds(seconds: Any) -> Any:
    return seconds * 1000


@dataclass(frozen=True, slots=True)
class Declaration:
    """A setting's declaration beside its name, type and default."""

    help: str  # Markdown
    rule: Rule
    engine: str | None = None  # the EngineConfig field the setting sets, if any
    to_engine: Callable[[Any], Any] = _same  # the setting's value in the engine's unit
    secret: bool = False  # never shown: not in errors, logs, repr or --help


def _is_time_zone(value: Any) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def setting(
    default: Any,
    help: str,
    rule: Rule,
    *,
    engine: str | None = None,
    to_engine: Callable[[Any], Any] = _same,
    secret: bool = False,
) -> Any:
    """Declare one setting (a field of :class:`Settings`)."""
    declared = Declaration(help, rule, engine, to_engine, secret)
    return field(default=default, repr=not secret, metadata={"setting": declared})


def engine_ms(name: str) -> dict[str, Any]:
    """A setting in seconds that sets the engine's ``name`` in milliseconds."""
    return {"engine": name, "to_engine": _milliseconds}


def parse_goals(value: str) -> tuple[int, ...]:
    """``"1000, 5000"`` as ``(1000, 5000)``; raises ValueError unless the numbers are
    positive integers in ascending order."""
    goals = tuple(int(part) for part in value.split(",") if part.strip())
    if any(g <= 0 for g in goals) or list(goals) != sorted(set(goals)):
        raise ValueError(value)
    return goals


def _is_goals(value: object) -> bool:
    try:
        return isinstance(value, str) and parse_goals(value) is not None
    except ValueError:
        return False


# Kafka's own rule for a group instance id (the Java client's
# JoinGroupRequest.validateGroupInstanceId, the same as for a topic name).
_KAFKA_ID = re.compile(r"[a-zA-Z0-9._-]{1,249}")


def _is_group_instance_id(value: object) -> bool:
    return isinstance(value, str) and (
        value == "" or (_KAFKA_ID.fullmatch(value) is not None and value not in (".", ".."))
    )


def _is_host_port(value: str) -> bool:
    host, sep, port = value.strip().rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def _one_of(values: tuple[str, ...]) -> Rule:
    return Rule(lambda v: v in values, "one of " + ", ".join(values))


def _int_between(low: int, high: int) -> Rule:
    return Rule(lambda v: isinstance(v, int) and low <= v <= high, f"an integer {low}-{high}")


_POSITIVE_INT = Rule(lambda v: isinstance(v, int) and v > 0, "a positive integer")
_NON_NEGATIVE_INT = Rule(lambda v: isinstance(v, int) and v >= 0, "an integer >= 0")
_STRING = Rule(lambda v: isinstance(v, str), "a string")
_NON_EMPTY = Rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")
_GOALS = Rule(_is_goals, "positive integers in ascending order, comma-separated (or empty)")
_HOST_PORTS = Rule(
    lambda v: isinstance(v, str) and all(_is_host_port(p) for p in v.split(",")),
    "host:port[,host:port...]",
)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of livepulse, with the defaults a user sees."""

    broker: str = setting(
        "127.0.0.1:9092",
        "Kafka bootstrap servers, `host:port[,host:port]` (also `--broker`)",
        _HOST_PORTS,
    )
    events_topic: str = setting("live.events", "input events", _NON_EMPTY)
    alerts_topic: str = setting("live.alerts", "published alerts", _NON_EMPTY)
    dlq_topic: str = setting("live.events.dlq", "dead letters", _NON_EMPTY)
    windows_topic: str = setting("live.windows", "closed tumbling windows", _NON_EMPTY)
    streams_topic: str = setting(
        "live.streams",
        "the stream table: each live stream's current state, keyed by stream id, a tombstone "
        "when it ends (compacted; [the money view](#the-money-view))",
        _NON_EMPTY,
    )
    creators_topic: str = setting(
        "live.creators",
        "creator days: each creator's figures per calendar day, keyed `creator/day` "
        "(compacted; [the money view](#the-money-view))",
        _NON_EMPTY,
    )
    app_id: str = setting(
        "livepulse",
        "Faust app id = consumer group; the state topic is `<app id>.state`",
        _NON_EMPTY,
    )
    metrics_host: str = setting("127.0.0.1", "metrics listen address", _NON_EMPTY)
    metrics_port: int = setting(
        6066,
        "metrics port (`/metrics`)",
        Rule(lambda v: isinstance(v, int) and 0 <= v <= 65535, "a port 0-65535"),
    )
    data_dir: str = setting(".local/worker", "Faust data directory", _NON_EMPTY)
    tier_window_seconds: int = setting(
        600,
        "length of the trailing window the tier is computed on",
        _POSITIVE_INT,
        **engine_ms("tier_window_ms"),
    )
    tier_step_seconds: int = setting(
        10,
        "bucket size of that window (the window must be a multiple)",
        _POSITIVE_INT,
        **engine_ms("tier_step_ms"),
    )
    tumbling_window_seconds: int = setting(
        60,
        "size of the per-stream tumbling windows published to the windows topic, and the "
        '"minute" of spikes and top users (a multiple of the step)',
        _POSITIVE_INT,
        **engine_ms("tumbling_ms"),
    )
    grace_seconds: int = setting(
        10,
        "how far behind stream time an event may be and still count",
        _NON_NEGATIVE_INT,
        **engine_ms("grace_ms"),
    )
    tier_moderate: int = setting(
        1_000, "likes in the window to enter `moderate`", _POSITIVE_INT, engine="moderate"
    )
    tier_high: int = setting(
        10_000, "likes in the window to enter `high`", _POSITIVE_INT, engine="high"
    )
    hysteresis: float = setting(
        0.10,
        "leaving a tier needs likes below threshold × (1 − this)",
        Rule(lambda v: isinstance(v, float) and 0.0 <= v < 1.0, "a fraction 0 <= h < 1"),
        engine="hysteresis",
    )
    session_tier_moderate: int = setting(
        1_000,
        "session likes for the `session_likes` milestone `moderate`",
        _POSITIVE_INT,
        engine="session_moderate",
    )
    session_tier_high: int = setting(
        10_000,
        "session likes for the milestone `high`",
        _POSITIVE_INT,
        engine="session_high",
    )
    inactivity_timeout_seconds: int = setting(
        1_800,
        "a stream that gets no event for this long by its idle clock (the worker caught up) "
        "ends, reason `inactive`, at its last event + this",
        _POSITIVE_INT,
        **engine_ms("inactivity_ms"),
    )
    # 0: the guarantee's own (COMMIT_INTERVAL_SECONDS), as Kafka Streams' commit.interval.ms
    # depends on processing.guarantee; see the ``commit_interval`` property
    commit_interval_seconds: float = setting(
        0.0,
        "how often input offsets are committed and state is checkpointed (0.05–60 s). `0` "
        "is the guarantee's own, as in Kafka Streams: **5 s with `at_least_once`**, whose "
        "outputs go out at once (the interval bounds what a crash replays; on the heavy "
        "workload 5 s costs 0.73× the CPU of 1 s), **1 s with `exactly_once`**, where it is "
        "how long a `read_committed` subscriber waits for an alert",
        Rule(
            lambda v: isinstance(v, float) and (v == 0.0 or 0.05 <= v <= 60.0),
            "a number of seconds 0.05-60, or 0 for the guarantee's default",
        ),
    )
    # exactly_once: each input partition's outputs, checkpoint and offsets are committed in
    # one Kafka transaction; at_least_once: outputs go out at once and may repeat after a
    # crash. Checkpoints are fenced transactions either way. at_least_once is the default:
    # on the heavy workload exactly_once cost more than 15% of the events/s and put a
    # read_committed subscriber's alert latency above 1 s at p99 (README, Benchmarks).
    processing_guarantee: str = setting(
        "at_least_once",
        "`at_least_once`: outputs go out at once and may repeat after a crash; "
        "`exactly_once`: outputs, checkpoint and offsets of each input partition in one "
        "Kafka transaction, each output once for `read_committed` subscribers (see [What a "
        "subscriber can rely on](#what-a-subscriber-can-rely-on); why the default is "
        "`at_least_once`: *Benchmarks*)",
        _one_of(PROCESSING_GUARANTEES),
    )
    # Each changed stream's table row and day part cost as much as its checkpoint record:
    # with exactly_once's 1 s commits, writing them at every commit tripled what a commit
    # wrote and halved the worker's events/s on the heavy workload (README, Benchmarks).
    table_interval_seconds: float = setting(
        5.0,
        "how often the stream table and the creator parts are written for the streams that "
        "changed: with every checkpoint this many seconds apart, rounded to whole commit "
        "intervals (5: every checkpoint with `at_least_once`, every fifth with "
        "`exactly_once`); a stream's end is written with the checkpoint that holds it "
        "([the money view](#the-money-view))",
        Rule(
            lambda v: isinstance(v, float) and 0.05 <= v <= 600.0,
            "a number of seconds 0.05-600",
        ),
    )
    session_timeout_seconds: float = setting(
        10.0,
        "consumer session timeout: how soon a dead worker's partitions move",
        Rule(lambda v: isinstance(v, float) and 6.0 <= v <= 300.0, "a number of seconds 6-300"),
    )
    # Static group membership (KIP-345): a worker restarted with the same id gets its
    # partitions back at once, without a rebalance. Empty: dynamic membership.
    group_instance_id: str = setting(
        "",
        "this worker's static identity in the consumer group (empty: dynamic membership); a "
        "worker restarted with the same id within the session timeout gets its partitions "
        "back at once, without a rebalance ([Static group "
        "membership](#static-group-membership)). One id per worker: Kafka's characters "
        "`a-z A-Z 0-9 . _ -`, at most 249",
        Rule(
            _is_group_instance_id,
            "empty, or 1-249 of the characters a-z A-Z 0-9 . _ - (not '.' or '..')",
        ),
    )
    # How the worker's producer compresses what it writes (checkpoints above all): on the
    # heavy workload lz4 cut the bytes written about fourfold, and sending bytes, loopback
    # included, costs more CPU than lz4 does.
    compression: str = setting(
        "lz4",
        "how the worker compresses what it writes (checkpoints, alerts, windows, dead "
        "letters): `none`, `lz4`, `zstd`, `snappy` or `gzip`. Input topics compressed with "
        "any of them are read too (aiokafka's codecs come from `cramjam`)",
        _one_of(COMPRESSIONS),
    )
    time_zone: str = setting(
        "UTC",
        "the IANA time zone of creators' calendar days (`Europe/Berlin`, ...): a session is "
        "split at its midnight",
        Rule(_is_time_zone, "an IANA time zone name such as UTC or America/New_York"),
        engine="time_zone",
    )
    usd_per_coin: float = setting(
        0.005,
        "estimated creator revenue per coin",
        Rule(lambda v: isinstance(v, float) and v >= 0.0, "a number >= 0"),
        engine="usd_per_coin",
    )
    max_record_bytes: int = setting(
        65_536, "larger records go to the dead-letter topic", _POSITIVE_INT
    )
    # An event whose ts is further ahead of its record's Kafka timestamp is a dead letter
    # (future_timestamp), so one bad clock cannot move a stream's time years ahead. 0: off.
    max_future_skew_seconds: int = setting(
        300,
        "an event whose `ts` is further ahead of its Kafka record timestamp is a "
        "`future_timestamp` dead letter; `0` turns the check off ([event time and record "
        "time](#what-a-subscriber-can-rely-on))",
        Rule(lambda v: isinstance(v, int) and v >= 0, "an integer >= 0 (0: no limit)"),
    )
    top_k: int = setting(
        10, "how many top streams the top-K gauges export (1–100)", _int_between(1, 100)
    )
    top_users: int = setting(
        5,
        "how many top gifters and top likers an alert names (1–100)",
        _int_between(1, 100),
        engine="top_users",
    )
    top_users_tracked: int = setting(
        32,
        "users tracked per stream, per metric and span; exact up to this many distinct "
        "users, Space-Saving estimates beyond ([Top gifters and "
        "likers](#top-gifters-and-likers))",
        _int_between(1, 10_000),
        engine="top_users_tracked",
    )
    spike_ratio: float = setting(
        2.0,
        "a minute spikes at this many times the stream's baseline per minute ([Spikes](#spikes))",
        Rule(lambda v: isinstance(v, float) and v > 1.0, "a number > 1"),
        engine="spike_ratio",
    )
    spike_rearm_ratio: float = setting(
        1.5,
        "after a spike, the detector re-arms after a minute at most this many times the "
        "baseline (or below the floor)",
        Rule(lambda v: isinstance(v, float) and v >= 0.0, "a number >= 0"),
        engine="spike_rearm_ratio",
    )
    spike_min_likes: int = setting(
        500,
        "floor: a minute with fewer likes never spikes",
        _POSITIVE_INT,
        engine="spike_min_likes",
    )
    spike_min_coins: int = setting(
        1_000,
        "floor: a minute with fewer coins never spikes",
        _POSITIVE_INT,
        engine="spike_min_coins",
    )
    spike_history_seconds: int = setting(
        180,
        "history a stream needs before its baseline is trusted (at most the tier window "
        "minus the tumbling window, or no spike fires)",
        _NON_NEGATIVE_INT,
        **engine_ms("spike_history_ms"),
    )
    like_goals: str = setting(
        "",
        "session like goals, e.g. `1000,5000,10000`: one `goal_reached` alert each (empty: off)",
        _GOALS,
        engine="like_goals",
        to_engine=parse_goals,
    )
    coin_goals: str = setting(
        "",
        "session coin goals, e.g. `500,1000,5000` (empty: off)",
        _GOALS,
        engine="coin_goals",
        to_engine=parse_goals,
    )
    log_level: str = setting("info", "`debug`, `info`, `warning`, `error`", _one_of(LOG_LEVELS))
    replication_factor: int = setting(
        1,
        "replication factor of the topics the worker creates when they are missing (use 3 "
        "on a production cluster)",
        _POSITIVE_INT,
    )
    # How every Kafka client of livepulse connects (worker, state reader, admin, simulate,
    # replay, alerts); see processor/kafka_client.py.
    security_protocol: str = setting(
        "PLAINTEXT",
        "how every Kafka client connects: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL` "
        "([Connect to your cluster](#connect-to-your-cluster))",
        _one_of(SECURITY_PROTOCOLS),
    )
    sasl_mechanism: str = setting(
        "PLAIN",
        "`PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (with `SASL_*`)",
        _one_of(SASL_MECHANISMS),
    )
    sasl_username: str = setting("", "SASL user (required with `SASL_*`)", _STRING)
    sasl_password: str = setting(
        "",
        "SASL password; never printed (not in logs, `--help` or errors)",
        _STRING,
        secret=True,
    )
    sasl_password_file: str = setting(
        "",
        "file whose first line is the SASL password, as Kubernetes mounts a secret (instead "
        "of `LIVEPULSE_SASL_PASSWORD`)",
        _STRING,
    )
    ssl_cafile: str = setting(
        "",
        "PEM file of the CA(s) that signed the broker's certificate (empty: the system's "
        "trusted CAs)",
        _STRING,
    )
    ssl_certfile: str = setting("", "PEM client certificate, for mutual TLS", _STRING)
    ssl_keyfile: str = setting(
        "",
        "its unencrypted PEM private key (or put the key in the certificate file)",
        _STRING,
    )
    ssl_check_hostname: bool = setting(
        True,
        "verify that the broker's certificate names the host connected to (`true`/`false`)",
        Rule(lambda v: isinstance(v, bool), "true or false"),
    )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def exactly_once(self) -> bool:
        return self.processing_guarantee == "exactly_once"

    @property
    def commit_interval(self) -> float:
        """Seconds between checkpoints and commits: ``commit_interval_seconds``, or the
        guarantee's default when that is 0."""
        return self.commit_interval_seconds or COMMIT_INTERVAL_SECONDS[self.processing_guarantee]

    @property
    def state_topic(self) -> str:
        """The compacted topic of the worker's checkpoint records."""
        return f"{self.app_id}.state"

    @property
    def creator_parts_topic(self) -> str:
        """The compacted internal topic of the streams' parts of creator days, partitioned
        by creator (the creator-days agent's input and state)."""
        return f"{self.app_id}.creator-parts"

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def sasl_secret(self) -> str:
        """The SASL password: ``sasl_password``, or the first line of ``sasl_password_file``
        (read at each call, so a rotated Kubernetes secret is picked up on restart)."""
        if not self.sasl_password_file:
            return self.sasl_password
        try:
            text = Path(self.sasl_password_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(
                f"{_env_name('sasl_password_file')}: cannot read "
                f"{self.sasl_password_file!r} ({reason})"
            ) from None
        return text.rstrip("\r\n")

    @property
    def like_goal_values(self) -> tuple[int, ...]:
        """``like_goals`` as numbers (validated at start-up)."""
        return parse_goals(self.like_goals)

    @property
    def coin_goal_values(self) -> tuple[int, ...]:
        """``coin_goals`` as numbers (validated at start-up)."""
        return parse_goals(self.coin_goals)

    def __post_init__(self) -> None:
        _validate(self)


DECLARATIONS: dict[str, Declaration] = {
    f.name: f.metadata["setting"] for f in dataclasses.fields(Settings)
}


def engine_values(settings: Settings) -> dict[str, Any]:
    """What the settings give the engine: its configuration's fields by name, in its units
    (``EngineConfig.from_settings`` builds it from them)."""
    return {
        declared.engine: declared.to_engine(getattr(settings, name))
        for name, declared in DECLARATIONS.items()
        if declared.engine is not None
    }


# Settings whose value never appears in an error message, a log line or --help.
SECRET_SETTINGS = frozenset(name for name, declared in DECLARATIONS.items() if declared.secret)


def _shown(name: str, value: object) -> str:
    """A setting's value as an error message may show it."""
    return "(hidden)" if name in SECRET_SETTINGS else repr(value)


def _env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _validate(settings: Settings) -> None:
    for name, declared in DECLARATIONS.items():
        value = getattr(settings, name)
        if not declared.rule.check(value):
            raise ConfigError(
                f"{_env_name(name)}: expected {declared.rule.expected}, got {_shown(name, value)}"
            )
    if settings.tier_high <= settings.tier_moderate:
        raise ConfigError(
            f"{_env_name('tier_high')}: must be greater than {_env_name('tier_moderate')} "
            f"({settings.tier_high} <= {settings.tier_moderate})"
        )
    if settings.session_tier_high <= settings.session_tier_moderate:
        raise ConfigError(
            f"{_env_name('session_tier_high')}: must be greater than "
            f"{_env_name('session_tier_moderate')} ({settings.session_tier_high} <= "
            f"{settings.session_tier_moderate})"
        )
    if settings.grace_seconds > settings.tier_window_seconds - settings.tier_step_seconds:
        raise ConfigError(
            f"{_env_name('grace_seconds')}: must be at most {_env_name('tier_window_seconds')} "
            f"- {_env_name('tier_step_seconds')} ({settings.grace_seconds} > "
            f"{settings.tier_window_seconds - settings.tier_step_seconds})"
        )
    if settings.top_users_tracked < settings.top_users:
        raise ConfigError(
            f"{_env_name('top_users_tracked')}: must be at least {_env_name('top_users')} "
            f"({settings.top_users_tracked} < {settings.top_users})"
        )
    if settings.spike_rearm_ratio >= settings.spike_ratio:
        raise ConfigError(
            f"{_env_name('spike_rearm_ratio')}: must be less than {_env_name('spike_ratio')} "
            f"({settings.spike_rearm_ratio} >= {settings.spike_ratio})"
        )
    if settings.tumbling_window_seconds % settings.tier_step_seconds:
        raise ConfigError(
            f"{_env_name('tumbling_window_seconds')}: must be a multiple of "
            f"{_env_name('tier_step_seconds')} ({settings.tumbling_window_seconds} % "
            f"{settings.tier_step_seconds} != 0)"
        )
    if settings.tier_window_seconds % settings.tier_step_seconds:
        raise ConfigError(
            f"{_env_name('tier_window_seconds')}: must be a multiple of "
            f"{_env_name('tier_step_seconds')} ({settings.tier_window_seconds} % "
            f"{settings.tier_step_seconds} != 0)"
        )
    _validate_security(settings)


def _validate_security(settings: Settings) -> None:
    """Security settings that contradict each other, or name files that are not there,
    stop start-up here rather than as a connection error later."""
    protocol = _env_name("security_protocol")
    if settings.uses_sasl:
        if not settings.sasl_username:
            raise ConfigError(
                f"{_env_name('sasl_username')}: required with {protocol}="
                f"{settings.security_protocol}"
            )
        if settings.sasl_password and settings.sasl_password_file:
            raise ConfigError(
                f"{_env_name('sasl_password')} and {_env_name('sasl_password_file')}: "
                "set one of them, not both"
            )
        if not settings.sasl_secret():
            source = (
                f"{_env_name('sasl_password_file')} ({settings.sasl_password_file!r} is empty)"
                if settings.sasl_password_file
                else f"{_env_name('sasl_password')} or {_env_name('sasl_password_file')}"
            )
            raise ConfigError(
                f"{source}: a password is required with {protocol}={settings.security_protocol}"
            )
    else:
        for name in ("sasl_username", "sasl_password", "sasl_password_file"):
            if getattr(settings, name):
                raise ConfigError(
                    f"{_env_name(name)} is set but {protocol} is "
                    f"{settings.security_protocol}, which does not use SASL: set {protocol} "
                    "to SASL_SSL or SASL_PLAINTEXT"
                )
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(settings, name)
        if not path:
            continue
        if not settings.uses_tls:
            raise ConfigError(
                f"{_env_name(name)} is set but {protocol} is {settings.security_protocol}, "
                f"which does not use TLS: set {protocol} to SSL or SASL_SSL"
            )
        if not Path(path).is_file():
            raise ConfigError(f"{_env_name(name)}: file {path!r} does not exist")
    if settings.ssl_keyfile and not settings.ssl_certfile:
        raise ConfigError(
            f"{_env_name('ssl_keyfile')}: a client key needs its certificate in "
            f"{_env_name('ssl_certfile')}"
        )


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _coerce(name: str, kind: type, raw: Any) -> Any:
    """Turn a string (env) or TOML value into the field's type, naming the field on failure."""
    if kind is str:
        return raw if isinstance(raw, str) else str(raw)
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise ConfigError(
            f"{_env_name(name)}: expected {DECLARATIONS[name].rule.expected}, got {raw!r}"
        )
    try:
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw)
        if kind is float:
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{_env_name(name)}: expected {DECLARATIONS[name].rule.expected}, got {_shown(name, raw)}"
        ) from None
    raise AssertionError(f"unsupported settings type {kind}")  # pragma: no cover


_FIELD_TYPES: dict[str, type] = {
    f.name: {"str": str, "int": int, "float": float, "bool": bool}[str(f.type)]
    for f in dataclasses.fields(Settings)
}


def load_settings(
    env: Mapping[str, str] | None = None,
    config_path: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from a config file, the environment and explicit overrides."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}

    path = config_path or env.get(ENV_PREFIX + "CONFIG")
    if path:
        values.update(_read_config_file(Path(path)))

    for name in _FIELD_TYPES:
        if _env_name(name) in env:
            values[name] = env[_env_name(name)]

    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(values) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    typed = {name: _coerce(name, _FIELD_TYPES[name], raw) for name, raw in values.items()}
    return Settings(**typed)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"LIVEPULSE_CONFIG: config file {str(path)!r} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"LIVEPULSE_CONFIG: {str(path)!r} is not valid TOML: {exc}") from None
    # The file may hold a [livepulse] table or top-level keys.
    section = data.get("livepulse", data)
    if not isinstance(section, dict):
        raise ConfigError(f"LIVEPULSE_CONFIG: {str(path)!r}: [livepulse] must be a table")
    unknown = sorted(set(section) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return dict(section)


def settings_table() -> list[tuple[str, str, str]]:
    """(environment variable, config key, default) for every setting, for docs and --help."""
    defaults = Settings()
    return [(_env_name(name), name, _shown_default(name, defaults)) for name in DECLARATIONS]


def _shown_default(name: str, defaults: Settings) -> str:
    value = getattr(defaults, name)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


def readme_table() -> str:
    """The README's configuration table: every setting, its default and its help."""
    rows = ["| environment variable | default | meaning |", "|---|---|---|"]
    for env, name, default in settings_table():
        help = DECLARATIONS[name].help
        rows.append(f"| `{env}` | `{default.strip(chr(39))}` | {help} |")
    return "\n".join(rows) + "\n"


_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


def help_text(width: int = 88) -> str:
    """Every setting with its default and its help, as ``livepulse --help`` lists them."""
    lines = []
    for env, name, default in settings_table():
        plain = _LINK.sub(r"\1", DECLARATIONS[name].help).replace("`", "").replace("**", "")
        lines.append(f"  {env:34} default {default}")
        lines += textwrap.wrap(plain, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


if __name__ == "__main__":  # python -m processor.settings: the README table, to paste
    print(readme_table(), end="")


__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "ConfigError",
    "Settings",
    "engine_values",
    "help_text",
    "load_settings",
    "readme_table",
    "settings_table",
]
