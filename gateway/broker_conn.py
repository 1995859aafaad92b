"""How the gateway's MQTT clients reach the broker: address, credentials and TLS.

Both clients (ingest and the engine's outbox publisher) build their ``aiomqtt.Client`` from
``connection_options`` so they can never disagree on where or how they connect.
"""

from __future__ import annotations

import ssl
from typing import Any, TypedDict

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


def connection_options(m: MqttSettings) -> ConnectionOptions:
    """Keyword arguments for ``aiomqtt.Client``: where, who, and how securely."""
    return ConnectionOptions(
        hostname=m.host,
        port=m.port,
        username=m.username,
        password=m.password.get_secret_value() if m.password else None,
        tls_context=tls_context(m),
    )
