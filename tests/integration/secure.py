"""The secured listeners of the test broker (deploy/kafka/kafka.sh, LIVEPULSE_KAFKA_SECURE=1).

kafka.sh makes the certificates in ``<home>/tls/`` on the first secured ``up`` of a home and
sets the one SASL user for PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

USERNAME = "livepulse"
PASSWORD = "livepulse-secret"


@dataclass(frozen=True)
class SecureBroker:
    plaintext: str  # "127.0.0.1:P" for test setup (topics, reading results)
    sasl_ssl: str  # "127.0.0.1:P+2": PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    ssl: str  # "127.0.0.1:P+3": client certificate required
    sasl_plaintext: str  # "127.0.0.1:P+4": SCRAM-SHA-512 only
    ca_file: Path  # the test CA that signed the broker's certificate (SAN 127.0.0.1, localhost)
    client_cert: Path  # signed by ca_file; the SSL listener requires it
    client_key: Path  # unencrypted PEM
    untrusted_ca_file: Path  # a CA that signed nothing of the broker's
    username: str  # "livepulse"
    password: str  # "livepulse-secret"


def kafka_sh_env(port: int) -> dict[str, str]:
    """kafka.sh settings for a secured broker whose client (PLAINTEXT) port is ``port``."""
    return {
        "LIVEPULSE_KAFKA_SECURE": "1",
        "LIVEPULSE_KAFKA_SASL_SSL_PORT": str(port + 2),
        "LIVEPULSE_KAFKA_SSL_PORT": str(port + 3),
        "LIVEPULSE_KAFKA_SASL_PLAINTEXT_PORT": str(port + 4),
    }


def secure_broker_of(port: int, home: Path) -> SecureBroker:
    """The secured broker kafka.sh runs from ``home`` with ``kafka_sh_env(port)``."""
    tls = home / "tls"
    broker = SecureBroker(
        plaintext=f"127.0.0.1:{port}",
        sasl_ssl=f"127.0.0.1:{port + 2}",
        ssl=f"127.0.0.1:{port + 3}",
        sasl_plaintext=f"127.0.0.1:{port + 4}",
        ca_file=tls / "ca.pem",
        client_cert=tls / "client.pem",
        client_key=tls / "client.key",
        untrusted_ca_file=tls / "untrusted-ca.pem",
        username=USERNAME,
        password=PASSWORD,
    )
    for path in (broker.ca_file, broker.client_cert, broker.client_key, broker.untrusted_ca_file):
        assert path.is_file(), f"kafka.sh did not make {path}"
    return broker
