"""Gateway settings, read from the environment (prefix ``TELECARE_``, nesting with ``__``).

Defaults are the development services that ``make services`` starts on loopback; the
docker-compose file publishes the same ports, and a test keeps the two in step.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import datetime
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_DB_PASSWORD = "telecare"  # the loopback-only development cluster's password


class MqttSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 18830
    username: str | None = None
    password: SecretStr | None = None
    # The engine's outbox publisher connects with its own credential when these are set. The
    # production broker forces client id = username (mosquitto.prod.conf), so one username
    # cannot hold the gateway's two connections; unset, both use ``username``.
    publisher_username: str | None = None
    publisher_password: SecretStr | None = None
    client_id: str = "telecare-gateway"
    # Topic roots: canonical devices and Careline under ``topic_root``; Zigbee2MQTT under its own.
    topic_root: str = "telecare"
    zigbee_root: str = "zigbee2mqtt"
    session_expiry_s: int = 7 * 24 * 3600
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # TLS to the broker (production: port 8883). The broker's certificate is always verified,
    # against ``ca_file`` (else the system CAs) and ``server_name`` (else ``host``).
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None  # mutual TLS, if the broker asks for it
    client_key: Path | None = None  # omit when the key is inside client_cert
    server_name: str | None = None

    @model_validator(mode="after")
    def _tls_files_need_tls(self) -> MqttSettings:
        given = [self.ca_file, self.client_cert, self.client_key, self.server_name]
        if not self.tls and any(v is not None for v in given):
            raise ValueError("TLS files or server name are set but TELECARE_MQTT__TLS is off")
        if self.client_key is not None and self.client_cert is None:
            raise ValueError("TELECARE_MQTT__CLIENT_KEY needs TELECARE_MQTT__CLIENT_CERT")
        for f in (self.ca_file, self.client_cert, self.client_key):
            if f is not None and not f.is_file():
                raise ValueError(f"MQTT TLS file not found: {f}")
        return self


class DbSettings(BaseModel):
    dsn: SecretStr = SecretStr(f"postgresql://telecare:{DEV_DB_PASSWORD}@127.0.0.1:54330/telecare")
    # Shipper: how many journal rows one COPY carries, and how long it rests when idle.
    ship_batch: int = 5000
    ship_idle_s: float = 0.2
    retry_min_s: float = 0.5
    retry_max_s: float = 10.0


class JournalSettings(BaseModel):
    path: Path = Path("var/journal.sqlite3")
    # Group commit: one fsync covers every message that arrived while the last one ran,
    # up to ``max_batch`` messages. Routine batches (heartbeats) begin at most every
    # ``max_delay_ms``, to fill; alarms are committed at once (gateway.ingest).
    max_batch: int = 500
    max_delay_ms: float = 20.0
    # Shipped rows are kept this long so a redelivered event_id is still recognised.
    dedupe_retention_h: float = 72.0


class HttpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8470


class IngestSettings(BaseModel):
    max_payload_bytes: int = 16 * 1024
    dead_letter_keep_bytes: int = 2048
    # MQTT 5 Receive Maximum: QoS 1 messages the broker may have unacknowledged with us.
    receive_maximum: int = Field(default=1000, ge=1, le=65535)
    # Messages decoded and waiting for the journal; the broker keeps the rest.
    queue_max: int = Field(default=2000, ge=1)
    # Receipts waiting to be published (a full queue drops and counts; devices resend).
    receipt_queue_max: int = Field(default=20_000, ge=1)
    # Receipts awaiting their PUBACK at once (they share the ingest connection's window).
    receipt_concurrency: int = Field(default=20, ge=1)


class DeliverySettings(BaseModel):
    """What the engine's outbox does with a publish the broker refuses or never acknowledges."""

    puback_timeout_s: float = Field(default=10.0, gt=0)
    retry_min_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=60.0, gt=0)
    # About 16 minutes with the defaults; then the row is given up and the control room told.
    max_attempts: int = Field(default=20, ge=1)


class ClockSettings(BaseModel):
    """Accelerated scheme time for the simulator and tests: ``speed`` times real time, with
    scheme time ``start`` at real Unix time ``anchor`` (shared by every process of a run)."""

    speed: float = Field(default=1.0, gt=0, le=10_000)
    start: datetime | None = None
    anchor: float | None = None


class EngineSettings(BaseModel):
    offer_timeout_s: int = Field(default=60, ge=5)
    max_individual_offers: int = Field(default=3, ge=1)
    escalation_repeat_s: int = Field(default=120, ge=10)
    arrival_margin_s: int = Field(default=120, ge=0)
    arrival_repeat_s: int = Field(default=300, ge=30)
    on_site_check_s: int = Field(default=3600, ge=60)
    supervision_misses: int = Field(default=3, ge=1)
    handset_timeout_s: int = Field(default=120, ge=10)
    tick_s: float = Field(
        default=5.0, gt=0, description="Scheme seconds between supervision ticks."
    )


class AuthSettings(BaseModel):
    """Accounts, sessions and sign-in limits (docs/security.md)."""

    # Accounts, sessions and the audit outbox: keep it beside the journal, outside the repo.
    store: Path = Path("var/auth.sqlite3")
    # Development and test only: the first start creates a development admin and control-room
    # account and writes their secrets here (0600) for `make demo` and the TUI.
    dev_credentials_file: Path = Path("var/dev-credentials.json")
    session_ttl_s: int = Field(default=12 * 3600, ge=60, le=7 * 24 * 3600)
    session_idle_s: int = Field(default=2 * 3600, ge=60)
    # Secure cookies: always in production (behind HTTPS); None means "in production only".
    cookie_secure: bool | None = None
    max_account_failures: int = Field(default=5, ge=1)
    max_address_failures: int = Field(default=20, ge=1)
    failure_window_s: int = Field(default=900, ge=1)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TELECARE_", env_nested_delimiter="__", extra="ignore"
    )

    environment: str = Field(default="development", pattern="^(development|test|production)$")
    gateway_id: str = "gw1"
    schemes: list[Path] = Field(default_factory=lambda: [Path("examples/hazelhurst-court.yaml")])
    # Visit schedules given explicitly (docs/visits.md); a scheme file's own
    # ``<stem>.visits.yaml`` beside it is loaded without being named here.
    visits: list[Path] = Field(default_factory=list)
    mqtt: MqttSettings = MqttSettings()
    db: DbSettings = DbSettings()
    journal: JournalSettings = JournalSettings()
    http: HttpSettings = HttpSettings()
    ingest: IngestSettings = IngestSettings()
    delivery: DeliverySettings = DeliverySettings()
    clock: ClockSettings = ClockSettings()
    engine: EngineSettings = EngineSettings()
    auth: AuthSettings = AuthSettings()

    @model_validator(mode="after")
    def _no_dev_secrets_in_production(self) -> Settings:
        # Messages here name the setting and never quote its value: they end up on a terminal
        # and in service logs.
        if self.environment == "production":
            if _dsn_password(self.db.dsn.get_secret_value()) == DEV_DB_PASSWORD:
                raise ValueError(
                    "TELECARE_DB__DSN uses the development database password; "
                    "set the production role's own password in TELECARE_DB__DSN"
                )
            if self.auth.cookie_secure is False:
                raise ValueError("TELECARE_AUTH__COOKIE_SECURE cannot be false in production")
        return self

    @model_validator(mode="after")
    def _broker_secured_in_production(self) -> Settings:
        # Broker credentials and alarms must not cross a network in clear text; a plain
        # connection is only acceptable to a broker on this host.
        m = self.mqtt
        if self.environment != "production":
            return self
        if not m.tls and not _is_loopback(m.host):
            raise ValueError(
                f"TELECARE_MQTT__TLS is off but the broker {m.host!r} is not on this host; "
                "turn TLS on (port 8883, TELECARE_MQTT__CA_FILE) in production"
            )
        if m.username is not None and m.publisher_username is None:
            raise ValueError(
                "TELECARE_MQTT__PUBLISHER_USERNAME / __PUBLISHER_PASSWORD are not set: the "
                "production broker takes one connection per username, and the gateway has two "
                "(`telecare devices provision` writes both credentials)"
            )
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _dsn_password(dsn: str) -> str | None:
    """The password libpq would send for ``dsn`` (URL or key=value form; PGPASSWORD when the
    DSN has none). Compared whole: a role or database named ``telecare`` is fine."""
    try:
        password = conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        # libpq's parse error quotes part of the string, which may be the password.
        raise ValueError("TELECARE_DB__DSN is not a valid PostgreSQL connection string") from None
    if password is None:
        password = os.environ.get("PGPASSWORD")
    return None if password is None else str(password)
