from pathlib import Path

import pytest

from processor.settings import ConfigError, Settings, load_settings


def test_defaults_are_a_local_broker_the_live_topics_and_the_readme_tiers() -> None:
    s = load_settings(env={})
    assert (s.broker, s.events_topic, s.alerts_topic, s.dlq_topic) == (
        "127.0.0.1:9092",
        "live.events",
        "live.alerts",
        "live.events.dlq",
    )
    assert (s.metrics_host, s.metrics_port) == ("127.0.0.1", 6066)
    assert (s.tier_moderate, s.tier_high, s.hysteresis) == (1_000, 10_000, 0.10)


def test_file_then_env_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "livepulse.toml"
    config.write_text(
        '[livepulse]\nmetrics_port = 7000\nalerts_topic = "a.file"\nhysteresis = 0.2\n'
    )
    s = load_settings(
        env={"LIVEPULSE_CONFIG": str(config), "LIVEPULSE_ALERTS_TOPIC": "a.env"},
        overrides={"broker": "k:1", "events_topic": None},
    )
    assert (s.metrics_port, s.alerts_topic, s.hysteresis, s.broker, s.events_topic) == (
        7000,
        "a.env",
        0.2,
        "k:1",
        "live.events",
    )


SASL_SSL = {"LIVEPULSE_SECURITY_PROTOCOL": "SASL_SSL", "LIVEPULSE_SASL_USERNAME": "svc"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"LIVEPULSE_METRICS_PORT": "abc"},
            "LIVEPULSE_METRICS_PORT: expected a port 0-65535, got 'abc'",
        ),
        ({"LIVEPULSE_METRICS_PORT": "70000"}, "LIVEPULSE_METRICS_PORT: expected a port"),
        ({"LIVEPULSE_HYSTERESIS": "1.5"}, "LIVEPULSE_HYSTERESIS: expected a fraction"),
        (
            {"LIVEPULSE_TIER_WINDOW_SECONDS": "0"},
            "LIVEPULSE_TIER_WINDOW_SECONDS: expected a positive",
        ),
        ({"LIVEPULSE_TIER_WINDOW_SECONDS": "1.5"}, "LIVEPULSE_TIER_WINDOW_SECONDS: expected"),
        (
            {"LIVEPULSE_TIER_WINDOW_SECONDS": "25"},
            "must be a multiple of LIVEPULSE_TIER_STEP_SECONDS",
        ),
        ({"LIVEPULSE_BROKER": "localhost"}, "LIVEPULSE_BROKER: expected host:port"),
        ({"LIVEPULSE_TIER_HIGH": "500"}, "LIVEPULSE_TIER_HIGH: must be greater than"),
        ({"LIVEPULSE_LOG_LEVEL": "loud"}, "LIVEPULSE_LOG_LEVEL: expected one of"),
        ({"LIVEPULSE_SPIKE_RATIO": "1"}, "LIVEPULSE_SPIKE_RATIO: expected a number > 1"),
        (
            {"LIVEPULSE_SPIKE_RATIO": "2", "LIVEPULSE_SPIKE_REARM_RATIO": "2"},
            "LIVEPULSE_SPIKE_REARM_RATIO: must be less than LIVEPULSE_SPIKE_RATIO",
        ),
        ({"LIVEPULSE_SPIKE_MIN_COINS": "0"}, "LIVEPULSE_SPIKE_MIN_COINS: expected a positive"),
        (
            {"LIVEPULSE_TOP_USERS": "10", "LIVEPULSE_TOP_USERS_TRACKED": "5"},
            "LIVEPULSE_TOP_USERS_TRACKED: must be at least LIVEPULSE_TOP_USERS",
        ),
        (
            {"LIVEPULSE_TUMBLING_WINDOW_SECONDS": "15"},
            "LIVEPULSE_TUMBLING_WINDOW_SECONDS: must be a multiple of LIVEPULSE_TIER_STEP_SECONDS",
        ),
        (
            {"LIVEPULSE_COIN_GOALS": "500,100"},
            "LIVEPULSE_COIN_GOALS: expected positive integers in ascending order",
        ),
        ({"LIVEPULSE_LIKE_GOALS": "1k"}, "LIVEPULSE_LIKE_GOALS: expected positive integers"),
        (
            {"LIVEPULSE_CONFIG": "/nonexistent.toml"},
            "config file '/nonexistent.toml' does not exist",
        ),
        (
            {"LIVEPULSE_SECURITY_PROTOCOL": "TLS"},
            "LIVEPULSE_SECURITY_PROTOCOL: expected one of PLAINTEXT, SSL, SASL_PLAINTEXT, "
            "SASL_SSL, got 'TLS'",
        ),
        (
            SASL_SSL | {"LIVEPULSE_SASL_MECHANISM": "GSSAPI", "LIVEPULSE_SASL_PASSWORD": "x"},
            "LIVEPULSE_SASL_MECHANISM: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, "
            "got 'GSSAPI'",
        ),
        (
            {"LIVEPULSE_SECURITY_PROTOCOL": "SASL_SSL", "LIVEPULSE_SASL_PASSWORD": "x"},
            "LIVEPULSE_SASL_USERNAME: required with LIVEPULSE_SECURITY_PROTOCOL=SASL_SSL",
        ),
        (
            SASL_SSL,
            "LIVEPULSE_SASL_PASSWORD or LIVEPULSE_SASL_PASSWORD_FILE: a password is required",
        ),
        (
            SASL_SSL | {"LIVEPULSE_SASL_PASSWORD_FILE": "/nonexistent/password"},
            "LIVEPULSE_SASL_PASSWORD_FILE: cannot read '/nonexistent/password' "
            "(No such file or directory)",
        ),
        (
            SASL_SSL | {"LIVEPULSE_SASL_PASSWORD_FILE": "/x", "LIVEPULSE_SASL_PASSWORD": "y"},
            "set one of them, not both",
        ),
        (
            {"LIVEPULSE_SASL_USERNAME": "svc"},
            "LIVEPULSE_SASL_USERNAME is set but LIVEPULSE_SECURITY_PROTOCOL is PLAINTEXT, which "
            "does not use SASL",
        ),
        (
            {"LIVEPULSE_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LIVEPULSE_SSL_CAFILE": "/ca.pem"}
            | {"LIVEPULSE_SASL_USERNAME": "u", "LIVEPULSE_SASL_PASSWORD": "p"},
            "LIVEPULSE_SSL_CAFILE is set but LIVEPULSE_SECURITY_PROTOCOL is SASL_PLAINTEXT, "
            "which does not use TLS",
        ),
        (
            {"LIVEPULSE_SECURITY_PROTOCOL": "SSL", "LIVEPULSE_SSL_CAFILE": "/nonexistent/ca"},
            "LIVEPULSE_SSL_CAFILE: file '/nonexistent/ca' does not exist",
        ),
        (
            {"LIVEPULSE_SSL_CHECK_HOSTNAME": "maybe"},
            "LIVEPULSE_SSL_CHECK_HOSTNAME: expected true or false, got 'maybe'",
        ),
        (
            {"LIVEPULSE_COMPRESSION": "lz5"},
            "LIVEPULSE_COMPRESSION: expected one of none, lz4, zstd, snappy, gzip, got 'lz5'",
        ),
        (
            {"LIVEPULSE_MAX_FUTURE_SKEW_SECONDS": "-1"},
            "LIVEPULSE_MAX_FUTURE_SKEW_SECONDS: expected an integer >= 0 (0: no limit), got -1",
        ),
        (
            {"LIVEPULSE_MAX_FUTURE_SKEW_SECONDS": "1.5"},
            "LIVEPULSE_MAX_FUTURE_SKEW_SECONDS: expected an integer >= 0 (0: no limit), got '1.5'",
        ),
    ],
)
def test_bad_values_name_the_setting(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert message in str(info.value)


def test_unknown_key_in_file_is_an_error(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("metrics_prot = 1\n")
    with pytest.raises(ConfigError, match="unknown setting\\(s\\): metrics_prot"):
        load_settings(env={}, config_path=config)


def test_settings_object_validates_itself() -> None:
    with pytest.raises(ConfigError, match="LIVEPULSE_TIER_STEP_SECONDS"):
        Settings(tier_step_seconds=-1)


def test_goals_are_read_as_ascending_numbers() -> None:
    settings = load_settings(env={"LIVEPULSE_LIKE_GOALS": "1000, 5000,10000"})
    assert settings.like_goal_values == (1_000, 5_000, 10_000)
    assert settings.coin_goal_values == ()


def test_a_key_needs_its_certificate(tmp_path: Path) -> None:
    key = tmp_path / "client.key"
    key.write_text("-")
    env = {"LIVEPULSE_SECURITY_PROTOCOL": "SSL", "LIVEPULSE_SSL_KEYFILE": str(key)}
    with pytest.raises(ConfigError, match="LIVEPULSE_SSL_KEYFILE: a client key needs"):
        load_settings(env=env)


def test_the_password_is_never_shown(tmp_path: Path) -> None:
    secret = "hunter2-secret"
    settings = load_settings(env=SASL_SSL | {"LIVEPULSE_SASL_PASSWORD": secret})
    assert settings.sasl_secret() == secret
    assert secret not in repr(settings) and secret not in str(settings)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError) as info:
        load_settings(env=SASL_SSL | {"LIVEPULSE_SASL_PASSWORD_FILE": str(empty)})
    assert "is empty" in str(info.value)


def test_the_password_file_gives_its_first_line(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("pa ss\n")  # as `kubectl create secret --from-file` leaves it
    config = tmp_path / "c.toml"
    config.write_text(
        f'security_protocol = "SASL_PLAINTEXT"\nsasl_mechanism = "SCRAM-SHA-256"\n'
        f'sasl_username = "svc"\nsasl_password_file = "{path}"\nssl_check_hostname = false\n'
    )
    settings = load_settings(env={}, config_path=config)
    assert (settings.security_protocol, settings.sasl_mechanism) == (
        "SASL_PLAINTEXT",
        "SCRAM-SHA-256",
    )
    assert settings.sasl_secret() == "pa ss"
    assert settings.ssl_check_hostname is False


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("0", False), ("No", False)])
def test_check_hostname_reads_the_usual_words(raw: str, value: bool) -> None:
    settings = load_settings(env={"LIVEPULSE_SSL_CHECK_HOSTNAME": raw})
    assert settings.ssl_check_hostname is value


def test_group_instance_id_is_off_unless_set(tmp_path: Path) -> None:
    assert load_settings(env={}).group_instance_id == ""
    pod_name = "livepulse-worker-0"  # a StatefulSet pod's name, as the manifests pass it
    env = load_settings(env={"LIVEPULSE_GROUP_INSTANCE_ID": pod_name})
    assert env.group_instance_id == pod_name
    config = tmp_path / "c.toml"
    config.write_text('[livepulse]\ngroup_instance_id = "host-7.worker_A"\n')
    assert load_settings(env={}, config_path=config).group_instance_id == "host-7.worker_A"
    longest = "w" * 249
    assert load_settings(env={"LIVEPULSE_GROUP_INSTANCE_ID": longest}).group_instance_id == longest


@pytest.mark.parametrize(
    "value",
    ["worker 0", " worker-0", "worker-0\n", "w/0", "wörker", "w:0", ".", "..", "w" * 250],
)
def test_a_bad_group_instance_id_names_the_setting(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(env={"LIVEPULSE_GROUP_INSTANCE_ID": value})
    assert str(info.value) == (
        "LIVEPULSE_GROUP_INSTANCE_ID: expected empty, or 1-249 of the characters "
        f"a-z A-Z 0-9 . _ - (not '.' or '..'), got {value!r}"
    )


def test_a_bad_group_instance_id_in_the_file_names_the_setting(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("group_instance_id = 7\n")  # coerced to "7": a valid id
    assert load_settings(env={}, config_path=config).group_instance_id == "7"
    config.write_text('group_instance_id = "a b"\n')
    with pytest.raises(ConfigError, match=r"^LIVEPULSE_GROUP_INSTANCE_ID: expected empty"):
        load_settings(env={}, config_path=config)


@pytest.mark.parametrize(
    ("env", "seconds"), [({}, 300), ({"LIVEPULSE_MAX_FUTURE_SKEW_SECONDS": "0"}, 0)]
)
def test_the_future_skew_is_five_minutes_unless_set(env: dict[str, str], seconds: int) -> None:
    assert load_settings(env=env).max_future_skew_seconds == seconds


def test_the_readme_configuration_table_is_what_the_declarations_generate() -> None:
    """Each setting is declared once; the README's table is generated from the
    declarations (``python -m processor.settings``), and must not drift from them."""
    from processor.settings import readme_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Configuration\n", 1)[1].split("\n## ", 1)[0]
    start = section.index("| environment variable |")
    assert section[start : section.index("\n\n", start) + 1] == readme_table()


def test_the_engine_configuration_comes_from_the_settings() -> None:
    """Every engine parameter but the memory of ended streams is a setting; the engine's
    defaults are the settings' defaults, in its units."""
    import dataclasses

    from processor.core.engine import EngineConfig
    from processor.settings import engine_values

    fields = {f.name for f in dataclasses.fields(EngineConfig)}
    assert set(engine_values(Settings())) == fields - {"ended_memory"}
    assert EngineConfig.from_settings(Settings()) == EngineConfig()
    config = EngineConfig.from_settings(
        load_settings(env={"LIVEPULSE_TIER_WINDOW_SECONDS": "300", "LIVEPULSE_LIKE_GOALS": "5,9"})
    )
    assert (config.tier_window_ms, config.like_goals) == (300_000, (5, 9))


def test_help_lists_every_setting_with_its_default_and_help() -> None:
    import re

    from processor.settings import DECLARATIONS, help_text

    text = help_text()
    assert text.count("LIVEPULSE_") >= len(DECLARATIONS)
    assert re.search(r"LIVEPULSE_SPIKE_REARM_RATIO +default 1\.5\n +after a spike, the", text)
    assert "](#" not in text and "`" not in text  # Markdown links and code marks are dropped
