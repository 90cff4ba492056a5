"""One settings object for every livepulse command.

Precedence, lowest first: built-in defaults, the TOML config file (``--config`` or
``LIVEPULSE_CONFIG``), ``LIVEPULSE_*`` environment variables. A bad value raises
:class:`ConfigError` naming the setting, so start-up stops with a clear message.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "LIVEPULSE_"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class ConfigError(ValueError):
    """A configuration value is missing, malformed or out of range."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of livepulse, with the defaults a user sees."""

    broker: str = "127.0.0.1:9092"
    events_topic: str = "live.events"
    alerts_topic: str = "live.alerts"
    dlq_topic: str = "live.events.dlq"
    windows_topic: str = "live.windows"
    streams_topic: str = "live.streams"
    creators_topic: str = "live.creators"
    app_id: str = "livepulse"
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 6066
    data_dir: str = ".local/worker"
    tier_window_seconds: int = 600
    tier_step_seconds: int = 10
    tumbling_window_seconds: int = 60
    grace_seconds: int = 10
    tier_moderate: int = 1_000
    tier_high: int = 10_000
    hysteresis: float = 0.10
    session_tier_moderate: int = 1_000
    session_tier_high: int = 10_000
    inactivity_timeout_seconds: int = 1_800
    # 0: the guarantee's own (COMMIT_INTERVAL_SECONDS), as Kafka Streams' commit.interval.ms
    # depends on processing.guarantee; see the ``commit_interval`` property
    commit_interval_seconds: float = 0.0
    # exactly_once: each input partition's outputs, checkpoint and offsets are committed in
    # one Kafka transaction; at_least_once: outputs go out at once and may repeat after a
    # crash. Checkpoints are fenced transactions either way. at_least_once is the default:
    # on the heavy workload exactly_once cost more than 15% of the events/s and put a
    # read_committed subscriber's alert latency above 1 s at p99 (README, Benchmarks).
    processing_guarantee: str = "at_least_once"
    session_timeout_seconds: float = 10.0
    # Static group membership (KIP-345): a worker restarted with the same id gets its
    # partitions back at once, without a rebalance. Empty: dynamic membership.
    group_instance_id: str = ""
    # How the worker's producer compresses what it writes (checkpoints above all): on the
    # heavy workload lz4 cut the bytes written about fourfold, and sending bytes, loopback
    # included, costs more CPU than lz4 does.
    compression: str = "lz4"
    usd_per_coin: float = 0.005
    max_record_bytes: int = 65_536
    # An event whose ts is further ahead of its record's Kafka timestamp is a dead letter
    # (future_timestamp), so one bad clock cannot move a stream's time years ahead. 0: off.
    max_future_skew_seconds: int = 300
    top_k: int = 10
    top_users: int = 5
    top_users_tracked: int = 32
    spike_ratio: float = 2.0
    spike_rearm_ratio: float = 1.5
    spike_min_likes: int = 500
    spike_min_coins: int = 1000
    spike_history_seconds: int = 180
    like_goals: str = ""
    coin_goals: str = ""
    log_level: str = "info"
    # How every Kafka client of livepulse connects (worker, state reader, admin, simulate,
    # replay, alerts); see processor/kafka_client.py.
    replication_factor: int = 1
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    sasl_password_file: str = ""
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True

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


@dataclass(frozen=True, slots=True)
class _Rule:
    check: Callable[[Any], bool]
    expected: str


_POSITIVE_INT = _Rule(lambda v: isinstance(v, int) and v > 0, "a positive integer")


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


PROCESSING_GUARANTEES = ("exactly_once", "at_least_once")
# The default commit interval of each guarantee. exactly_once: a read_committed subscriber
# sees an alert when its transaction commits, so the interval is its latency. at_least_once
# publishes at once; the interval only bounds what a crash replays, and every commit
# checkpoints the streams that changed in it: on the heavy workload nearly all of them, so
# 5 s costs 0.73x the CPU of 1 s (README, Benchmarks).
COMMIT_INTERVAL_SECONDS = {"exactly_once": 1.0, "at_least_once": 5.0}
COMPRESSIONS = ("none", "lz4", "zstd", "snappy", "gzip")

_GOALS = _Rule(_is_goals, "positive integers in ascending order, comma-separated (or empty)")
_STRING = _Rule(lambda v: isinstance(v, str), "a string")
_NON_EMPTY = _Rule(lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string")

_RULES: dict[str, _Rule] = {
    "broker": _Rule(
        lambda v: isinstance(v, str) and all(_is_host_port(p) for p in v.split(",")),
        "host:port[,host:port...]",
    ),
    "events_topic": _NON_EMPTY,
    "alerts_topic": _NON_EMPTY,
    "dlq_topic": _NON_EMPTY,
    "windows_topic": _NON_EMPTY,
    "streams_topic": _NON_EMPTY,
    "creators_topic": _NON_EMPTY,
    "app_id": _NON_EMPTY,
    "metrics_host": _NON_EMPTY,
    "metrics_port": _Rule(lambda v: isinstance(v, int) and 0 <= v <= 65535, "a port 0-65535"),
    "data_dir": _NON_EMPTY,
    "tier_window_seconds": _POSITIVE_INT,
    "tier_step_seconds": _POSITIVE_INT,
    "tumbling_window_seconds": _POSITIVE_INT,
    "grace_seconds": _Rule(lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "tier_moderate": _POSITIVE_INT,
    "tier_high": _POSITIVE_INT,
    "session_tier_moderate": _POSITIVE_INT,
    "session_tier_high": _POSITIVE_INT,
    "inactivity_timeout_seconds": _POSITIVE_INT,
    "commit_interval_seconds": _Rule(
        lambda v: isinstance(v, float) and (v == 0.0 or 0.05 <= v <= 60.0),
        "a number of seconds 0.05-60, or 0 for the guarantee's default",
    ),
    "processing_guarantee": _Rule(
        lambda v: v in PROCESSING_GUARANTEES, "one of " + ", ".join(PROCESSING_GUARANTEES)
    ),
    "session_timeout_seconds": _Rule(
        lambda v: isinstance(v, float) and 6.0 <= v <= 300.0, "a number of seconds 6-300"
    ),
    "group_instance_id": _Rule(
        _is_group_instance_id,
        "empty, or 1-249 of the characters a-z A-Z 0-9 . _ - (not '.' or '..')",
    ),
    "compression": _Rule(lambda v: v in COMPRESSIONS, "one of " + ", ".join(COMPRESSIONS)),
    "hysteresis": _Rule(lambda v: isinstance(v, float) and 0.0 <= v < 1.0, "a fraction 0 <= h < 1"),
    "usd_per_coin": _Rule(lambda v: isinstance(v, float) and v >= 0.0, "a number >= 0"),
    "max_record_bytes": _POSITIVE_INT,
    "max_future_skew_seconds": _Rule(
        lambda v: isinstance(v, int) and v >= 0, "an integer >= 0 (0: no limit)"
    ),
    "top_k": _Rule(lambda v: isinstance(v, int) and 1 <= v <= 100, "an integer 1-100"),
    "top_users": _Rule(lambda v: isinstance(v, int) and 1 <= v <= 100, "an integer 1-100"),
    "top_users_tracked": _Rule(
        lambda v: isinstance(v, int) and 1 <= v <= 10_000, "an integer 1-10000"
    ),
    "spike_ratio": _Rule(lambda v: isinstance(v, float) and v > 1.0, "a number > 1"),
    "spike_rearm_ratio": _Rule(lambda v: isinstance(v, float) and v >= 0.0, "a number >= 0"),
    "spike_min_likes": _POSITIVE_INT,
    "spike_min_coins": _POSITIVE_INT,
    "spike_history_seconds": _Rule(lambda v: isinstance(v, int) and v >= 0, "an integer >= 0"),
    "like_goals": _GOALS,
    "coin_goals": _GOALS,
    "log_level": _Rule(
        lambda v: v in {"debug", "info", "warning", "error"}, "one of debug, info, warning, error"
    ),
    "replication_factor": _POSITIVE_INT,
    "security_protocol": _Rule(
        lambda v: v in SECURITY_PROTOCOLS, "one of " + ", ".join(SECURITY_PROTOCOLS)
    ),
    "sasl_mechanism": _Rule(lambda v: v in SASL_MECHANISMS, "one of " + ", ".join(SASL_MECHANISMS)),
    "sasl_username": _STRING,
    "sasl_password": _STRING,
    "sasl_password_file": _STRING,
    "ssl_cafile": _STRING,
    "ssl_certfile": _STRING,
    "ssl_keyfile": _STRING,
    "ssl_check_hostname": _Rule(lambda v: isinstance(v, bool), "true or false"),
}

# Settings whose value never appears in an error message, a log line or --help.
SECRET_SETTINGS = frozenset({"sasl_password"})


def _shown(name: str, value: object) -> str:
    """A setting's value as an error message may show it."""
    return "(hidden)" if name in SECRET_SETTINGS else repr(value)


def _is_host_port(value: str) -> bool:
    host, sep, port = value.strip().rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


def _env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _validate(settings: Settings) -> None:
    for name, rule in _RULES.items():
        value = getattr(settings, name)
        if not rule.check(value):
            raise ConfigError(
                f"{_env_name(name)}: expected {rule.expected}, got {_shown(name, value)}"
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
        raise ConfigError(f"{_env_name(name)}: expected {_RULES[name].expected}, got {raw!r}")
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
            f"{_env_name(name)}: expected {_RULES[name].expected}, got {_shown(name, raw)}"
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
    return [(_env_name(name), name, _shown_default(name, defaults)) for name in _FIELD_TYPES]


def _shown_default(name: str, defaults: Settings) -> str:
    value = getattr(defaults, name)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "ConfigError",
    "Settings",
    "load_settings",
    "settings_table",
]
