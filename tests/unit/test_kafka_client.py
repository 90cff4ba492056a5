"""Security settings to client options, and failed connections to messages naming the
setting to check. The same failures against a real secured broker are in
tests/integration/test_secure_pipeline.py; here each cause is built by hand."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from aiokafka import codec, errors
from aiokafka.record._crecords import default_records as c_default
from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from processor.kafka_client import (
    BrokerUnavailable,
    check_broker,
    client_options,
    explain,
    fast_lz4,
    faust_credentials,
    ssl_context,
)
from processor.settings import ConfigError, Settings

SECRET = "s3cr3t-do-not-print"


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed CA and a client certificate with its key, made with openssl."""
    d = tmp_path_factory.mktemp("pem")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=test-ca")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client.key", "-out", "client.csr",
        "-subj", "/CN=client")  # fmt: skip
    run("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "client.pem", "-days", "2")  # fmt: skip
    (d / "not-pem.txt").write_text("hello\n")
    return {
        "ca": d / "ca.pem",
        "client": d / "client.pem",
        "key": d / "client.key",
        "not-pem": d / "not-pem.txt",
    }


def test_plaintext_is_the_default_and_has_no_tls_or_sasl() -> None:
    options = client_options(Settings(broker="k1:9092,k2:9092"))
    assert options == {"bootstrap_servers": "k1:9092,k2:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(Settings()) is None


def test_sasl_ssl_with_scram_and_a_ca_file(pem: dict[str, Path]) -> None:
    settings = Settings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password=SECRET,
        ssl_cafile=str(pem["ca"]),
    )
    options = client_options(settings)
    context = options.pop("ssl_context")
    assert options == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": SECRET,
    }
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    # only the given CA is trusted, not the system's
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test-ca"),),)]
    credentials = faust_credentials(settings)
    assert (credentials.username, credentials.password) == ("svc", SECRET)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert SECRET not in repr(credentials) and SECRET not in repr(settings)


def test_sasl_plaintext_has_no_tls_context() -> None:
    settings = Settings(security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password="p")
    assert "ssl_context" not in client_options(settings)
    assert faust_credentials(settings).protocol.value == "SASL_PLAINTEXT"


def test_mutual_tls_loads_the_client_certificate(pem: dict[str, Path]) -> None:
    settings = Settings(
        security_protocol="SSL",
        ssl_cafile=str(pem["ca"]),
        ssl_certfile=str(pem["client"]),
        ssl_keyfile=str(pem["key"]),
        ssl_check_hostname=False,
    )
    context = client_options(settings)["ssl_context"]
    assert not context.check_hostname
    assert faust_credentials(settings).protocol.value == "SSL"


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(SECRET + "\n")
    settings = Settings(
        security_protocol="SASL_SSL", sasl_username="u", sasl_password_file=str(secret)
    )
    assert client_options(settings)["sasl_plain_password"] == SECRET


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("not-pem", "LIVEPULSE_SSL_CAFILE: "),
        ("client-without-key", "LIVEPULSE_SSL_CERTFILE and LIVEPULSE_SSL_KEYFILE: cannot load"),
    ],
)
def test_files_that_are_not_certificates_are_configuration_errors(
    pem: dict[str, Path], which: str, message: str
) -> None:
    if which == "not-pem":
        settings = Settings(security_protocol="SSL", ssl_cafile=str(pem["not-pem"]))
    else:
        settings = Settings(security_protocol="SSL", ssl_certfile=str(pem["client"]))
    with pytest.raises(ConfigError, match=message):
        ssl_context(settings)


SASL = Settings(
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-256",
    sasl_username="svc",
    sasl_password=SECRET,
)


def _verify_error(message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {message}")
    exc.verify_message = message
    return exc


def _ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


def _wrapped(cause: BaseException) -> errors.KafkaConnectionError:
    try:
        raise errors.KafkaConnectionError("Connection at k:9093 closed") from cause
    except errors.KafkaConnectionError as exc:
        return exc


@pytest.mark.parametrize(
    ("settings", "exc", "names", "says"),
    [
        (
            SASL,
            errors.SaslAuthenticationFailed("Authentication failed during authentication"),
            ["LIVEPULSE_SASL_USERNAME", "LIVEPULSE_SASL_PASSWORD", "LIVEPULSE_SASL_MECHANISM"],
            "authentication failed for user 'svc' with SCRAM-SHA-256",
        ),
        (
            SASL,
            errors.UnsupportedSaslMechanismError(
                "Kafka broker does not support SCRAM-SHA-256 sasl mechanism. Enabled "
                "mechanisms are: ['SCRAM-SHA-512']"
            ),
            ["LIVEPULSE_SASL_MECHANISM"],
            "does not accept SASL mechanism SCRAM-SHA-256 (it offers ['SCRAM-SHA-512'])",
        ),
        (
            SASL,
            _verify_error("unable to get local issuer certificate"),
            ["LIVEPULSE_SSL_CAFILE"],
            "not trusted (unable to get local issuer certificate) by the system's trusted CAs",
        ),
        (
            SASL,
            _wrapped(_verify_error("Hostname mismatch, certificate is not valid for 'k'.")),
            ["LIVEPULSE_SSL_CHECK_HOSTNAME", "LIVEPULSE_BROKER"],
            "does not name this host",
        ),
        (
            SASL,
            _ssl_error("TLSV13_ALERT_CERTIFICATE_REQUIRED"),
            ["LIVEPULSE_SSL_CERTFILE", "LIVEPULSE_SSL_KEYFILE"],
            "requires a client certificate",
        ),
        (
            SASL,
            _ssl_error("WRONG_VERSION_NUMBER"),
            ["LIVEPULSE_SECURITY_PROTOCOL"],
            "the TLS handshake failed (WRONG_VERSION_NUMBER); LIVEPULSE_SECURITY_PROTOCOL is SASL_SSL",
        ),
        (
            Settings(),
            errors.KafkaConnectionError("Connection at k:9093 closed"),
            ["LIVEPULSE_SECURITY_PROTOCOL", "LIVEPULSE_BROKER"],
            "closed the connection during the handshake: check LIVEPULSE_SECURITY_PROTOCOL (now PLAINTEXT)",
        ),
        (
            SASL,
            ConnectionResetError(),
            ["LIVEPULSE_SECURITY_PROTOCOL (now SASL_SSL)", "LIVEPULSE_SSL_CERTFILE"],
            "closed the connection during the handshake",
        ),
        (
            Settings(),
            TimeoutError(),
            ["LIVEPULSE_SECURITY_PROTOCOL"],
            "no answer within 10 s",
        ),
        (
            Settings(),
            ConnectionRefusedError(111, "Connection refused"),
            ["LIVEPULSE_BROKER"],
            "cannot connect (Connection refused); is the broker running?",
        ),
    ],
)
def test_each_failure_names_the_settings_to_check(
    settings: Settings, exc: BaseException, names: list[str], says: str
) -> None:
    message = explain(exc, settings, "k:9093", 10.0)
    assert message.startswith("k:9093: ")
    assert says in message
    for name in names:
        assert name in message
    assert SECRET not in message


def test_the_check_gives_up_within_its_timeout_on_a_silent_listener() -> None:
    """A listener that accepts and never answers (a TLS client at a port that waits for
    more bytes, say) ends the check at its deadline, not at aiokafka's 40 s."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        settings = Settings(broker=f"127.0.0.1:{port}")
        with pytest.raises(BrokerUnavailable) as info:
            asyncio.run(check_broker(settings, timeout_s=1.0))
    assert f"127.0.0.1:{port}: no answer within 1 s" in str(info.value)
    assert "LIVEPULSE_SECURITY_PROTOCOL" in str(info.value)


def test_the_check_tries_every_bootstrap_address() -> None:
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    settings = Settings(broker=",".join(f"127.0.0.1:{p}" for p in ports))
    with pytest.raises(BrokerUnavailable) as info:
        asyncio.run(check_broker(settings, timeout_s=5.0))
    for port in ports:
        assert f"127.0.0.1:{port}: cannot connect" in str(info.value)


def test_fast_lz4_makes_aiokafka_batches_level_1_frames_that_read_back() -> None:
    fast_lz4()
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=DefaultRecordBatch.CODEC_LZ4,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    values = [b'{"stream_id":"s-%d","likes":%d}' % (i % 7, i) for i in range(500)]
    for offset, value in enumerate(values):
        builder.append(offset, timestamp=None, key=None, value=value, headers=[])
    batch = DefaultRecordBatch(builder.build())
    assert batch.compression_type == DefaultRecordBatch.CODEC_LZ4
    assert [record.value for record in batch] == values
    payload = b"".join(values)
    level_1, level_9 = codec.lz4_encode(payload, 1), codec.lz4_encode(payload, 9)
    assert level_1 != level_9  # the payload tells the levels apart
    assert c_default.lz4_encode(payload) == level_1
