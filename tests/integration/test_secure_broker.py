"""The test broker's secured listeners, proven with plain aiokafka and kcat (no livepulse code).

Each listener and SASL mechanism carries records both ways, and the broker really enforces
passwords, its certificate's CA, client certificates and per-listener mechanisms. The
negative tests pin what aiokafka raises in each case, both from ``create_conn`` (the cause
itself) and from ``AIOKafkaProducer.start()`` (a bare "Unable to bootstrap" whose cause is
only in aiokafka.client's error log), so that livepulse can classify them for its users.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.conn import create_conn
from aiokafka.errors import (
    KafkaConnectionError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from aiokafka.helpers import create_ssl_context

from tests.integration.kafka import create_topics, kcat, produce, read_all
from tests.integration.secure import SecureBroker

N = 120
PARTITIONS = 3
# Every rejection here is immediate on a local broker (observed: under 0.4 s); a failure
# that needs a timeout to show would leave users waiting, so it is pinned as fast.
FAIL_FAST_S = 5.0

Records = list[tuple[bytes | None, bytes]]
ClientKwargs = dict[str, Any]


def tls(
    broker: SecureBroker, *, cafile: Path | None = None, client_cert: bool = False
) -> ssl.SSLContext:
    context: ssl.SSLContext = create_ssl_context(
        cafile=str(cafile or broker.ca_file),
        certfile=str(broker.client_cert) if client_cert else None,
        keyfile=str(broker.client_key) if client_cert else None,
    )
    assert context.check_hostname  # the broker certificate's SAN covers 127.0.0.1
    return context


def sasl(broker: SecureBroker, mechanism: str, password: str | None = None) -> ClientKwargs:
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": broker.username,
        "sasl_plain_password": broker.password if password is None else password,
    }


# name -> (listener address, aiokafka client settings) of a client the broker accepts
ACCEPTED: dict[str, Callable[[SecureBroker], tuple[str, ClientKwargs]]] = {
    "SASL_SSL-PLAIN": lambda b: (
        b.sasl_ssl,
        {"security_protocol": "SASL_SSL", "ssl_context": tls(b), **sasl(b, "PLAIN")},
    ),
    "SASL_SSL-SCRAM-SHA-256": lambda b: (
        b.sasl_ssl,
        {"security_protocol": "SASL_SSL", "ssl_context": tls(b), **sasl(b, "SCRAM-SHA-256")},
    ),
    "SASL_SSL-SCRAM-SHA-512": lambda b: (
        b.sasl_ssl,
        {"security_protocol": "SASL_SSL", "ssl_context": tls(b), **sasl(b, "SCRAM-SHA-512")},
    ),
    "SSL-client-certificate": lambda b: (
        b.ssl,
        {"security_protocol": "SSL", "ssl_context": tls(b, client_cert=True)},
    ),
    "SASL_PLAINTEXT-SCRAM-SHA-512": lambda b: (
        b.sasl_plaintext,
        {"security_protocol": "SASL_PLAINTEXT", **sasl(b, "SCRAM-SHA-512")},
    ),
}


async def fresh_topic(broker: SecureBroker) -> str:
    topic = f"t{uuid.uuid4().hex[:8]}.secure"
    await create_topics(broker.plaintext, [topic], PARTITIONS)
    return topic


def numbered(label: str) -> Records:
    return [(b"k%d" % (i % 7), b"%s %d" % (label.encode(), i)) for i in range(N)]


def assert_same_records(got: Records, sent: Records) -> None:
    """Exactly the records sent, each key's in the order sent (one key, one partition)."""
    assert sorted(got, key=repr) == sorted(sent, key=repr)
    for key in {k for k, _ in sent}:
        assert [v for k, v in got if k == key] == [v for k, v in sent if k == key]


@pytest.mark.parametrize("case", ACCEPTED)
async def test_secured_listener_carries_records_both_ways(
    secure_broker: SecureBroker, case: str
) -> None:
    address, client = ACCEPTED[case](secure_broker)
    topic = await fresh_topic(secure_broker)
    sent = numbered(case)
    await produce(address, topic, sent, **client)
    through = await read_all(address, topic, **client)
    assert_same_records([(r.key, r.value) for r in through], sent)
    on_plaintext = await read_all(secure_broker.plaintext, topic)
    assert_same_records([(r.key, r.value) for r in on_plaintext], sent)


def test_kcat_produces_over_sasl_ssl_and_consumes_over_mutual_tls(
    secure_broker: SecureBroker,
) -> None:
    """A non-Python client (librdkafka) through TLS with hostname verification, SASL and a
    client certificate.

    With PLAIN, not SCRAM: librdkafka before 2.6.1 (Debian 12 has 2.0.2) fails SCRAM against
    Kafka 4 brokers with "invalid credentials" (edenhill/kcat#462), while aiokafka and the
    Java client (kafka.sh's readiness probe) pass SCRAM-SHA-256 and -512 with the same user.
    """
    b = secure_broker
    topic = asyncio.run(fresh_topic(b))
    sent = numbered("kcat")
    lines = b"".join(b"%s\t%s\n" % (key or b"", value) for key, value in sent)
    kcat(
        *("-b", b.sasl_ssl, "-P", "-t", topic, "-K", "\t"),
        *("-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=PLAIN"),
        *("-X", f"sasl.username={b.username}", "-X", f"sasl.password={b.password}"),
        *("-X", f"ssl.ca.location={b.ca_file}"),
        stdin=lines,
    )
    on_plaintext = asyncio.run(read_all(b.plaintext, topic))
    assert_same_records([(r.key, r.value) for r in on_plaintext], sent)

    out = kcat(
        *("-b", b.ssl, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k\t%s\n"),
        *("-X", "security.protocol=SSL", "-X", f"ssl.ca.location={b.ca_file}"),
        *("-X", f"ssl.certificate.location={b.client_cert}"),
        *("-X", f"ssl.key.location={b.client_key}"),
    )
    rows = [line.split(b"\t", 1) for line in out.splitlines()]
    assert_same_records([(key, value) for key, value in rows], sent)


@dataclass(frozen=True)
class Rejected:
    """A client the broker refuses, and what aiokafka's create_conn raises for it."""

    address: Callable[[SecureBroker], str]
    client: Callable[[SecureBroker], ClientKwargs]
    error: type[BaseException]
    message: str  # regex for str(error); {address}/{port} are the listener's, escaped
    cause: type[BaseException] | None = None
    cause_message: str | None = None  # regex for str(error.__cause__)


REJECTED: dict[str, Rejected] = {
    "wrong-password-SCRAM-SHA-256": Rejected(
        lambda b: b.sasl_ssl,
        lambda b: {
            "security_protocol": "SASL_SSL",
            "ssl_context": tls(b),
            **sasl(b, "SCRAM-SHA-256", "wrong"),
        },
        SaslAuthenticationFailed,
        r"\[Error 58\] SaslAuthenticationFailed: Authentication failed during authentication "
        r"due to invalid credentials with SASL mechanism SCRAM-SHA-256",
    ),
    "wrong-password-SCRAM-SHA-512": Rejected(
        lambda b: b.sasl_plaintext,
        lambda b: {"security_protocol": "SASL_PLAINTEXT", **sasl(b, "SCRAM-SHA-512", "wrong")},
        SaslAuthenticationFailed,
        r"\[Error 58\] SaslAuthenticationFailed: Authentication failed during authentication "
        r"due to invalid credentials with SASL mechanism SCRAM-SHA-512",
    ),
    "wrong-password-PLAIN": Rejected(
        lambda b: b.sasl_ssl,
        lambda b: {"security_protocol": "SASL_SSL", "ssl_context": tls(b), **sasl(b, "PLAIN", "x")},
        SaslAuthenticationFailed,
        r"\[Error 58\] SaslAuthenticationFailed: Authentication failed: "
        r"Invalid username or password",
    ),
    "untrusted-CA": Rejected(
        lambda b: b.sasl_ssl,
        lambda b: {
            "security_protocol": "SASL_SSL",
            "ssl_context": tls(b, cafile=b.untrusted_ca_file),
            **sasl(b, "SCRAM-SHA-256"),
        },
        ssl.SSLCertVerificationError,
        r"\[SSL: CERTIFICATE_VERIFY_FAILED\] certificate verify failed: "
        r"self-signed certificate in certificate chain \(_ssl\.c:\d+\)",
    ),
    "PLAINTEXT-client-on-SASL_SSL-port": Rejected(
        lambda b: b.sasl_ssl,
        lambda b: {"security_protocol": "PLAINTEXT"},
        KafkaConnectionError,
        r"KafkaConnectionError: Connection at {address} closed",
        asyncio.IncompleteReadError,
        r"3 bytes read on a total of \d+ expected bytes",
    ),
    "PLAIN-on-SCRAM-SHA-512-only-SASL_PLAINTEXT-port": Rejected(
        lambda b: b.sasl_plaintext,
        lambda b: {"security_protocol": "SASL_PLAINTEXT", **sasl(b, "PLAIN")},
        UnsupportedSaslMechanismError,
        r"\[Error 33\] UnsupportedSaslMechanismError: "
        r"<AIOKafkaConnection host=127\.0\.0\.1 port={port}>",
    ),
    "SASL_SSL-client-without-certificate-on-SSL-port": Rejected(
        lambda b: b.ssl,
        lambda b: {"security_protocol": "SASL_SSL", "ssl_context": tls(b), **sasl(b, "PLAIN")},
        KafkaConnectionError,
        r"KafkaConnectionError: Connection at {address} closed",
        ssl.SSLError,
        r"\[SSL: SSLV3_ALERT_BAD_CERTIFICATE\] sslv3 alert bad certificate \(_ssl\.c:\d+\)",
    ),
    "SSL-client-without-certificate-on-SSL-port": Rejected(
        lambda b: b.ssl,
        lambda b: {"security_protocol": "SSL", "ssl_context": tls(b)},
        KafkaConnectionError,
        r"KafkaConnectionError: Connection at {address} closed",
        ssl.SSLError,
        r"\[SSL: SSLV3_ALERT_BAD_CERTIFICATE\] sslv3 alert bad certificate \(_ssl\.c:\d+\)",
    ),
}


def pattern(case: Rejected, address: str) -> str:
    port = address.rsplit(":", 1)[1]
    return case.message.format(address=re.escape(address), port=port)


@pytest.mark.parametrize("name", REJECTED)
async def test_create_conn_raises_the_cause(secure_broker: SecureBroker, name: str) -> None:
    case = REJECTED[name]
    address = case.address(secure_broker)
    host, port = address.rsplit(":", 1)
    started = time.monotonic()
    with pytest.raises(case.error) as caught:
        conn = await create_conn(host, int(port), **case.client(secure_broker))
        conn.close()
    elapsed = time.monotonic() - started
    assert type(caught.value) is case.error
    assert re.fullmatch(pattern(case, address), str(caught.value)), str(caught.value)
    if case.cause is None:
        assert caught.value.__cause__ is None
    else:
        assert type(caught.value.__cause__) is case.cause, repr(caught.value.__cause__)
        assert case.cause_message is not None
        assert re.fullmatch(case.cause_message, str(caught.value.__cause__))
    assert elapsed < FAIL_FAST_S


@pytest.mark.parametrize("name", REJECTED)
async def test_producer_start_hides_the_cause_in_the_client_log(
    secure_broker: SecureBroker, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    case = REJECTED[name]
    address = case.address(secure_broker)
    host, port = address.rsplit(":", 1)
    caplog.set_level(logging.ERROR, logger="aiokafka")
    producer = AIOKafkaProducer(bootstrap_servers=address, **case.client(secure_broker))
    started = time.monotonic()
    try:
        with pytest.raises(KafkaConnectionError) as caught:
            await producer.start()
    finally:
        await producer.stop()
    elapsed = time.monotonic() - started
    assert type(caught.value) is KafkaConnectionError
    assert str(caught.value) == (
        f"KafkaConnectionError: Unable to bootstrap from [('{host}', {port}, "
        "<AddressFamily.AF_INET: 2>)]"
    )
    assert caught.value.__cause__ is None
    logged = [
        r.getMessage()
        for r in caplog.records
        if r.name == "aiokafka" and r.levelno == logging.ERROR
    ]
    prefix = re.escape(f'Unable connect to "{address}": ')
    assert len(logged) == 1, logged
    assert re.fullmatch(prefix + pattern(case, address), logged[0]), logged
    assert elapsed < FAIL_FAST_S
