"""How the gateway's MQTT clients reach the broker: address, credentials and TLS, the one
client factory (:func:`mqtt_client`) and the one reconnect backoff (:class:`Backoff`).

Both clients (ingest and the engine's outbox publisher) build their ``aiomqtt.Client`` from
``connection_options`` so they can never disagree on where or how they connect; only the
credential differs, when the publisher has its own.
"""

from __future__ import annotations

import random
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from gateway.config import MqttSettings


class ConnectionOptions(TypedDict):
    hostname: str
    port: int
    username: str | None
    password: str | None
    tls_context: ssl.SSLContext | None


class _NamedServerContext(ssl.SSLContext):
    """An SSL context that checks the broker's certificate against a fixed name.

    paho passes the host it dials as ``server_hostname``; when that is an address or an
    internal alias (``127.0.0.1``, a compose service name) and the certificate names the
    broker's real DNS name, the name to verify has to come from the settings instead.
    """

    server_name: str

    def wrap_socket(self, sock: Any, *args: Any, **kwargs: Any) -> ssl.SSLSocket:
        kwargs["server_hostname"] = self.server_name
        return super().wrap_socket(sock, *args, **kwargs)


def tls_context(m: MqttSettings) -> ssl.SSLContext | None:
    """The client TLS context for these settings, or None for a plain connection.

    Always verifies the broker (certificate chain and name); TLS 1.2 at least. Files are read
    on every call, so a reconnect picks up a renewed certificate.
    """
    if not m.tls:
        return None
    ctx: ssl.SSLContext
    if m.server_name:
        ctx = _NamedServerContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.server_name = m.server_name
    else:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    # PROTOCOL_TLS_CLIENT sets CERT_REQUIRED and check_hostname; keep them explicit.
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.check_hostname = True
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if m.ca_file is not None:
        ctx.load_verify_locations(cafile=str(m.ca_file))
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if m.client_cert is not None:
        ctx.load_cert_chain(
            certfile=str(m.client_cert),
            keyfile=str(m.client_key) if m.client_key is not None else None,
        )
    return ctx


def connection_options(m: MqttSettings, publisher: bool = False) -> ConnectionOptions:
    """Keyword arguments for ``aiomqtt.Client``: where, who, and how securely. ``publisher``
    is the engine's outbox connection, on its own credential when one is configured."""
    username, password = m.username, m.password
    if publisher and m.publisher_username is not None:
        username, password = m.publisher_username, m.publisher_password
    return ConnectionOptions(
        hostname=m.host,
        port=m.port,
        username=username,
        password=password.get_secret_value() if password else None,
        tls_context=tls_context(m),
    )


_REFUSED = {134, 135}  # MQTT 5 CONNACK: bad user name or password, not authorised


def publisher_refusal(m: MqttSettings, timeout_s: float = 10.0) -> str | None:
    """Try the outbox's own credential once, before the gateway starts.

    Ingest refuses to start on a credential the broker rejects; the outbox publisher only
    retries, so without this check a wrong ``TELECARE_MQTT__PUBLISHER_PASSWORD`` would give a
    gateway that reads ready while no offer ever leaves it. Returns the refusal line, or None
    when the broker accepts it, or cannot be reached now (the publisher keeps trying then).
    """
    if m.publisher_username is None:
        return None
    opts = connection_options(m, publisher=True)
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{m.client_id}-out-check",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.username_pw_set(opts["username"], opts["password"])
    if opts["tls_context"] is not None:
        client.tls_set_context(opts["tls_context"])
    answered = threading.Event()
    codes: list[int] = []

    def on_connect(c: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        codes.append(int(rc.value))
        answered.set()

    client.on_connect = on_connect
    try:
        client.connect(m.host, m.port, keepalive=30)
    except OSError:
        return None
    client.loop_start()
    try:
        answered.wait(timeout_s)
    finally:
        client.disconnect()
        client.loop_stop()
    if codes and codes[0] in _REFUSED:
        return (
            "the broker refused TELECARE_MQTT__PUBLISHER_USERNAME / __PUBLISHER_PASSWORD "
            f"(reason {codes[0]}); the engine could not send offers"
        )
    return None


C = TypeVar("C", bound=aiomqtt.Client)


def mqtt_client(
    m: MqttSettings,
    identifier: str,
    *,
    publisher: bool = False,
    cls: type[C] = aiomqtt.Client,  # type: ignore[assignment]
    **kwargs: Any,
) -> C:
    """An MQTT 5 client for the gateway: where, who and how securely from the settings, a 10 s
    operation timeout, and anything else (session, properties, queue bounds) from the caller."""
    return cls(
        **connection_options(m, publisher=publisher),
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        timeout=10,
        **kwargs,
    )


def no_delay(client: aiomqtt.Client) -> bool:
    """Turn Nagle's algorithm off on a connected client's socket (paho leaves it on).

    With it on, a small packet written while an earlier one is still unacknowledged at the TCP
    level waits for that ACK, and the peer's delayed ACK holds it up to 40 ms: an offer
    published just after another packet, or a PUBACK sent just after a receipt, could wait
    that long. Every packet the gateway writes is a whole MQTT packet it wants sent now.
    False when there is no socket (not connected)."""
    sock = client._client.socket()
    if not isinstance(sock, socket.socket):  # None when not connected (an SSLSocket is one)
        return False
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return True


class Backoff:
    """Capped exponential backoff with jitter, for every loop that reconnects to something.

    ``next()`` is the delay before the next attempt: ``first_s``, doubling up to ``cap_s``, each
    spread by ±``jitter`` so that gateways restarted together do not retry in step. ``reset()``
    after a success starts again from ``first_s``.
    """

    def __init__(
        self,
        first_s: float,
        cap_s: float,
        jitter: float = 0.2,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        if first_s <= 0 or cap_s < first_s or not 0 <= jitter < 1:
            raise ValueError("backoff needs 0 < first_s <= cap_s and 0 <= jitter < 1")
        self.first_s = first_s
        self.cap_s = cap_s
        self.jitter = jitter
        self._uniform = uniform
        self._base = first_s

    @property
    def base(self) -> float:
        """The next delay before jitter."""
        return self._base

    def reset(self) -> None:
        self._base = self.first_s

    def next(self) -> float:
        delay = self._base * self._uniform(1 - self.jitter, 1 + self.jitter)
        self._base = min(self._base * 2, self.cap_s)
        return delay
