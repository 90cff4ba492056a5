"""How every livepulse Kafka client connects, and why it could not.

:func:`client_options` turns the security settings into aiokafka keyword arguments (the
worker's events consumer, the state reader, the admin client, ``simulate``, ``replay`` and
``alerts`` all take them); :func:`faust_credentials` gives the same to the Faust app's
producer. :func:`check_broker` runs before any of them starts: one connection, with the
handshake and authentication a real client does, bounded in time. aiokafka's own
bootstrap logs the cause of a failure and raises a generic "Unable to bootstrap"; here the
cause is kept, and :func:`explain` turns it into a message that names the setting to check.
The password never appears in a message.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from typing import Any

from processor.settings import ConfigError, Settings

CHECK_TIMEOUT_S = 20.0  # the whole start-up check, over every bootstrap address
CONNECT_TIMEOUT_S = 10.0  # one address: TCP, TLS, ApiVersions, SASL

BROKER = "LIVEPULSE_BROKER"
PROTOCOL = "LIVEPULSE_SECURITY_PROTOCOL"
MECHANISM = "LIVEPULSE_SASL_MECHANISM"
CREDENTIALS = (
    "LIVEPULSE_SASL_USERNAME and LIVEPULSE_SASL_PASSWORD (or LIVEPULSE_SASL_PASSWORD_FILE)"
)
CAFILE = "LIVEPULSE_SSL_CAFILE"
CHECK_HOSTNAME = "LIVEPULSE_SSL_CHECK_HOSTNAME"
CLIENT_CERT = "LIVEPULSE_SSL_CERTFILE and LIVEPULSE_SSL_KEYFILE"


class BrokerUnavailable(RuntimeError):
    """No bootstrap address accepted a connection; the message names what to check."""


@functools.lru_cache(maxsize=4)
def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context for SSL and SASL_SSL (None otherwise): the system's trusted CAs, or
    ``ssl_cafile``; a client certificate for mutual TLS; hostname verification unless
    turned off. A file that is not a usable PEM raises :class:`ConfigError` naming it.
    Made once per settings and shared by every client (a restore after each rebalance opens
    a new consumer; the files need not be read again)."""
    if not settings.uses_tls:
        return None
    try:  # with a CA file, only that CA is trusted (as in Kafka's own clients)
        context = ssl.create_default_context(cafile=settings.ssl_cafile or None)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(
            f"{CAFILE}: {settings.ssl_cafile!r} holds no usable PEM certificate ({exc})"
        ) from None
    if settings.ssl_certfile:
        try:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile or None)
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(
                f"{CLIENT_CERT}: cannot load the client certificate {settings.ssl_certfile!r}"
                f"{' with key ' + repr(settings.ssl_keyfile) if settings.ssl_keyfile else ''} "
                f"({exc}); the key must be unencrypted PEM"
            ) from None
    context.check_hostname = settings.ssl_check_hostname
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client: consumer, producer or admin."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.broker,
        "security_protocol": settings.security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        options["ssl_context"] = context
    if settings.uses_sasl:
        options["sasl_mechanism"] = settings.sasl_mechanism
        options["sasl_plain_username"] = settings.sasl_username
        options["sasl_plain_password"] = settings.sasl_secret()
    return options


def faust_credentials(settings: Settings) -> Any:
    """The same, as Faust's ``broker_credentials`` (None for PLAINTEXT)."""
    import faust  # late: faust is slow to import, and only the worker needs it

    context = ssl_context(settings)
    if settings.uses_sasl:
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_secret(),
            ssl_context=context,
            mechanism=settings.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


async def check_broker(settings: Settings, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Connect to the bootstrap addresses in turn, the way the clients will (TLS,
    ApiVersions, SASL), until one accepts; raise :class:`BrokerUnavailable` naming the
    setting to check if none does within ``timeout_s``."""
    from aiokafka.conn import create_conn

    options = client_options(settings)
    options.pop("bootstrap_servers")
    deadline = asyncio.get_running_loop().time() + timeout_s
    problems: list[str] = []
    for address in settings.broker.split(","):
        host, _, port = address.strip().rpartition(":")
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        attempt = min(CONNECT_TIMEOUT_S, left)
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    int(port),
                    client_id="livepulse-check",
                    request_timeout_ms=int(attempt * 1000),
                    **options,
                ),
                attempt + 1,
            )
        except Exception as exc:  # each cause is explained below
            message = explain(exc, settings, address.strip(), attempt)
            offered = await _mechanisms_offered(host, int(port), options, exc)
            if offered and "(it offers" not in message:
                message = message.replace(": check", f" (it offers {offered}): check", 1)
            problems.append(message)
            continue
        conn.close()
        return
    if not problems:
        problems.append(f"no answer from {settings.broker} within {timeout_s:.0f} s")
    raise BrokerUnavailable("; ".join(problems))


async def _mechanisms_offered(
    host: str, port: int, options: dict[str, Any], failure: BaseException
) -> str:
    """After an unsupported-mechanism failure: the mechanisms the listener does enable,
    from a bare SASL handshake (no credentials sent); empty if that cannot be had."""
    from aiokafka import errors
    from aiokafka.conn import create_conn
    from aiokafka.protocol.admin import SaslHandShakeRequest

    if not isinstance(failure, errors.UnsupportedSaslMechanismError):
        return ""
    tls = options["security_protocol"] == "SASL_SSL"
    try:
        conn = await asyncio.wait_for(
            create_conn(
                host,
                port,
                client_id="livepulse-check",
                request_timeout_ms=int(CONNECT_TIMEOUT_S * 1000),
                security_protocol="SSL" if tls else "PLAINTEXT",
                ssl_context=options.get("ssl_context"),
            ),
            CONNECT_TIMEOUT_S,
        )
        try:
            response = await asyncio.wait_for(
                conn.send(SaslHandShakeRequest("PLAIN")), CONNECT_TIMEOUT_S
            )
        finally:
            conn.close()
    except Exception:  # only a better message was at stake
        return ""
    return ", ".join(response.enabled_mechanisms)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def explain(exc: BaseException, settings: Settings, address: str, timeout_s: float) -> str:
    """One failed connection, as a message that says what happened and which settings to
    check. Pure: it looks at the exception chain and the settings, nothing else."""
    from aiokafka import errors

    protocol = settings.security_protocol
    mechanism = settings.sasl_mechanism
    chain = _causes(exc)

    def find(kind: type[BaseException]) -> Any:
        return next((e for e in chain if isinstance(e, kind)), None)

    if (verify := find(ssl.SSLCertVerificationError)) is not None:
        reason = verify.verify_message or str(verify)
        if "hostname" in reason.lower() or "ip address mismatch" in reason.lower():
            return (
                f"{address}: the broker's TLS certificate does not name this host ({reason}): "
                f"check {BROKER} (use the host name the certificate was issued for), or set "
                f"{CHECK_HOSTNAME}=false to skip the check"
            )
        where = repr(settings.ssl_cafile) if settings.ssl_cafile else "the system's trusted CAs"
        return (
            f"{address}: the broker's TLS certificate is not trusted ({reason}) by {where}: "
            f"check {CAFILE} (the CA that signed the broker's certificate)"
        )
    if (unsupported := find(errors.UnsupportedSaslMechanismError)) is not None:
        detail = str(unsupported.args[0]) if unsupported.args else ""
        offered = detail.partition("Enabled mechanisms are: ")[2]
        return (
            f"{address}: the broker does not accept SASL mechanism {mechanism}"
            f"{' (it offers ' + offered + ')' if offered else ''}: check {MECHANISM}"
        )
    if find(errors.SaslAuthenticationFailed) or find(errors.IllegalSaslStateError):
        return (
            f"{address}: authentication failed for user {settings.sasl_username!r} with "
            f"{mechanism}: check {CREDENTIALS}, and {MECHANISM}"
        )
    if (tls := find(ssl.SSLError)) is not None:
        reason = tls.reason or str(tls)
        if "CERTIFICATE_REQUIRED" in reason or "BAD_CERTIFICATE" in reason:
            return (
                f"{address}: the broker requires a client certificate ({reason}): check "
                f"{CLIENT_CERT}"
            )
        return (
            f"{address}: the TLS handshake failed ({reason}); {PROTOCOL} is {protocol}: "
            "check that this listener speaks TLS (else use PLAINTEXT or SASL_PLAINTEXT)"
        )
    hint = _handshake_hint(settings)
    # reset or cut short: something listens there but hung up, mostly at a protocol it
    # does not speak (a TLS client at a plaintext listener resets)
    if find(ConnectionResetError) or find(BrokenPipeError) or find(asyncio.IncompleteReadError):
        return f"{address}: the broker closed the connection during the handshake{hint}"
    os_error = find(OSError)
    if os_error is not None and not isinstance(os_error, TimeoutError):
        reason = os_error.strerror or str(os_error) or type(os_error).__name__
        return f"{address}: cannot connect ({reason}); is the broker running? check {BROKER}"
    if find(TimeoutError) is not None or find(asyncio.TimeoutError) is not None:
        return f"{address}: no answer within {timeout_s:.0f} s{hint}"
    if find(errors.KafkaConnectionError) is not None:
        return f"{address}: the broker closed the connection during the handshake{hint}"
    return f"{address}: {type(exc).__name__}: {exc}{hint}"


def _handshake_hint(settings: Settings) -> str:
    """What to check when a connection died without saying why: mostly a protocol that is
    not the listener's (a plaintext client at a TLS port, SASL at a plain one)."""
    protocol = settings.security_protocol
    hint = f": check {PROTOCOL} (now {protocol}) against the broker's listener, and {BROKER}"
    if settings.uses_tls:
        hint += f"; if the broker requires a client certificate, check {CLIENT_CERT}"
    if settings.uses_sasl:
        hint += f"; if it uses SASL, check {MECHANISM} and {CREDENTIALS}"
    return hint


__all__ = [
    "BrokerUnavailable",
    "check_broker",
    "client_options",
    "explain",
    "faust_credentials",
    "ssl_context",
]


# aiokafka compresses lz4 at level 9 (lz4's HC mode, the level the broker itself uses for
# recompression) and has no setting for it. Measured on 1 MiB of checkpoint-like records
# (cramjam 2.14): level 9 takes 28 ms, level 1 2.3 ms for 21% more bytes. At the heavy
# workload's rate that is about 6% of the worker's CPU spent on a few KB/s saved.
LZ4_LEVEL = 1


def fast_lz4() -> None:
    """Make aiokafka's record batch builders compress lz4 at :data:`LZ4_LEVEL` (idempotent).

    The builders look ``lz4_encode`` up in their module at every batch, so replacing it
    there is enough; the frames stay standard lz4 that every client reads."""
    from aiokafka import codec
    from aiokafka.record import default_records, legacy_records

    def lz4_encode(payload: Any, level: int = LZ4_LEVEL) -> bytes:
        return bytes(codec.lz4_encode(payload, LZ4_LEVEL))

    modules: list[Any] = [default_records, legacy_records]
    try:
        from aiokafka.record._crecords import default_records as c_default
        from aiokafka.record._crecords import legacy_records as c_legacy

        modules += [c_default, c_legacy]
    except ImportError:  # aiokafka without its C extensions (AIOKAFKA_NO_EXTENSIONS)
        pass
    for module in modules:
        if hasattr(module, "lz4_encode"):
            module.lz4_encode = lz4_encode
