"""Broker credentials and ACL from the scheme files (``telecare devices provision``).

Every MQTT client gets its own username and secret, and an ACL that names exactly the topics
it may use: a device its own events (write) and receipts (read); a carer's handset its own
actions, presence and visits (write) and dispatch (read); a scheme's Careline operator the call-outs
(write) and Careline status and receipts (read); the Zigbee2MQTT bridge its own root; the
gateway exactly what it subscribes to and publishes, on two credentials (ingest, and the
engine's outbox), because the production broker takes one connection per username. There
are no shared or default secrets.

The ACL uses explicit ``user`` blocks rather than ``pattern`` lines with ``%u``: a pattern
applies to every client (the gateway and the Careline too) and cannot pin a device to its
scheme or tell a device from a handset. Explicit blocks are generated, so their length costs
nothing, and each one can be read on its own.

Passwords are stored as Mosquitto 2.0 ``$7$`` hashes (PBKDF2-SHA512), the format
``mosquitto_passwd`` writes, so the broker reads the file unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from devices.scheme import Scheme
from devices.topics import TopicLayout

# Mosquitto's own default. The secrets are 192 random bits, so stretching guards nothing an
# attacker could guess; a low count keeps a reconnect storm of every device cheap for the broker.
PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12  # what mosquitto_passwd uses
SECRET_BYTES = 24  # 192 bits, 32 URL-safe characters

DEFAULT_GATEWAY_USER = "telecare-gateway"
DEFAULT_ZIGBEE_USER = "zigbee2mqtt"


class ProvisionError(Exception):
    """Provisioning cannot go ahead; the message says why and what to do."""


class Kind(StrEnum):
    GATEWAY = "gateway"
    DEVICE = "device"
    CARER = "carer"
    CARELINE = "careline"
    ZIGBEE = "zigbee2mqtt"


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READWRITE = "readwrite"


@dataclass(frozen=True, slots=True)
class Grant:
    access: Access
    topic: str


@dataclass(frozen=True, slots=True)
class Principal:
    """One broker client: who it is, and every topic it may use."""

    username: str
    kind: Kind
    scheme: str | None
    subject: str | None  # device id, carer id, or which of the gateway's connections
    grants: tuple[Grant, ...]


def publisher_username(gateway_user: str) -> str:
    """The gateway's second credential, for the engine's outbox connection."""
    return f"{gateway_user}-out"


def device_username(scheme: str, device_id: str) -> str:
    return f"{scheme}/device/{device_id}"


def carer_username(scheme: str, carer_id: str) -> str:
    return f"{scheme}/carer/{carer_id}"


def careline_username(scheme: str) -> str:
    return f"{scheme}/careline"


def plan(
    schemes: Sequence[Scheme],
    layout: TopicLayout,
    gateway_user: str = DEFAULT_GATEWAY_USER,
    zigbee_user: str = DEFAULT_ZIGBEE_USER,
) -> list[Principal]:
    """Every client the schemes need, with its grants; the gateway first."""
    ids = [s.id for s in schemes]
    if len(set(ids)) != len(ids):
        raise ProvisionError(f"a scheme is listed twice: {sorted(ids)}")
    r, W, RD = layout, Access.WRITE, Access.READ
    ingest: list[Grant] = []
    outbox: list[Grant] = []
    out: list[Principal] = []
    zigbee = False
    for s in schemes:
        # The gateway's ingest connection reads what it subscribes to (devices/topics.py:
        # subscriptions()) and publishes the receipts; its outbox connection publishes what the
        # engine sends. Naming each scheme (no ``+`` for the scheme level) keeps a gateway off
        # schemes it was not provisioned for.
        ingest += [
            Grant(RD, r.device_events(s.id, "+")),
            Grant(RD, r.callouts(s.id)),
            Grant(RD, r.carer(s.id, "+", "actions")),
            Grant(RD, r.carer(s.id, "+", "presence")),
            Grant(RD, r.carer(s.id, "+", "visits")),
            Grant(W, r.device_receipts(s.id, "+")),
            Grant(W, r.careline_receipts(s.id)),
        ]
        outbox += [
            Grant(W, r.carer(s.id, "+", "dispatch")),
            Grant(W, r.control_alerts(s.id)),
            Grant(W, r.careline_status(s.id, "+")),
        ]
        out.append(
            Principal(
                careline_username(s.id),
                Kind.CARELINE,
                s.id,
                None,
                (
                    Grant(W, r.callouts(s.id)),
                    Grant(RD, r.careline_status(s.id, "+")),
                    Grant(RD, r.careline_receipts(s.id)),
                ),
            )
        )
        for d in s.devices:
            if d.zigbee_friendly_name is not None:
                # A Zigbee sensor speaks radio to Zigbee2MQTT, which publishes for it under
                # its own credential; the sensor itself never connects to the broker.
                zigbee = True
                continue
            out.append(
                Principal(
                    device_username(s.id, d.device_id),
                    Kind.DEVICE,
                    s.id,
                    d.device_id,
                    (
                        Grant(W, r.device_events(s.id, d.device_id)),
                        Grant(RD, r.device_receipts(s.id, d.device_id)),
                    ),
                )
            )
        for c in s.carers:
            out.append(
                Principal(
                    carer_username(s.id, c.id),
                    Kind.CARER,
                    s.id,
                    c.id,
                    (
                        Grant(W, r.carer(s.id, c.id, "actions")),
                        Grant(W, r.carer(s.id, c.id, "presence")),
                        Grant(W, r.carer(s.id, c.id, "visits")),
                        Grant(RD, r.carer(s.id, c.id, "dispatch")),
                    ),
                )
            )
    if zigbee:
        ingest.append(Grant(RD, f"{layout.zigbee_root}/+"))
        # Zigbee2MQTT publishes device state and reads its own ``/set`` and bridge requests.
        out.append(
            Principal(
                zigbee_user,
                Kind.ZIGBEE,
                None,
                None,
                (Grant(Access.READWRITE, f"{layout.zigbee_root}/#"),),
            )
        )
    # Fences (gateway.fence): the ingest connection publishes to its own topic and hears them
    # back in order with everything else; its client id is its username on this broker.
    ingest.append(Grant(Access.READWRITE, layout.fence(gateway_user)))
    principals = [
        Principal(gateway_user, Kind.GATEWAY, None, "ingest", tuple(ingest)),
        Principal(publisher_username(gateway_user), Kind.GATEWAY, None, "outbox", tuple(outbox)),
        *out,
    ]
    _check_usernames(principals)
    return principals


def _check_usernames(principals: Iterable[Principal]) -> None:
    seen: set[str] = set()
    for p in principals:
        # ':' ends the username in the password file; whitespace and wildcards break ACL lines.
        if not p.username or any(ch in p.username for ch in ":+# \t\r\n\x00"):
            raise ProvisionError(f"username {p.username!r} cannot be used with Mosquitto")
        if p.username in seen:
            raise ProvisionError(f"two broker clients would share the username {p.username!r}")
        seen.add(p.username)


def render_acl(principals: Sequence[Principal], generated_at: datetime) -> str:
    """A Mosquitto ``acl_file``: deny by default, one ``user`` block per client."""
    lines = [
        "# Mosquitto ACL generated by `telecare devices provision`; do not edit by hand:",
        "# re-run the command after changing a scheme file.",
        f"# Generated {generated_at.isoformat(timespec='seconds')}. "
        "Anything not granted below is refused.",
    ]
    for p in principals:
        label = p.kind.value + (f" {p.subject}" if p.subject else "")
        label += f" ({p.scheme})" if p.scheme else ""
        lines += ["", f"# {label}", f"user {p.username}"]
        lines += [f"topic {g.access.value} {g.topic}" for g in p.grants]
    return "\n".join(lines) + "\n"


# ---- password hashes ---------------------------------------------------------------------


def hash_password(
    secret: str, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS
) -> str:
    """A Mosquitto 2.0 ``$7$`` password hash (PBKDF2-SHA512, as ``mosquitto_passwd`` writes)."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    b64 = base64.b64encode
    return f"$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches a ``$7$`` hash (used to check files, never at run time)."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        want = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations)
    return hmac.compare_digest(got, want)


def read_password_file(path: Path) -> dict[str, str]:
    """username -> stored hash, from an existing Mosquitto password file."""
    entries: dict[str, str] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not stored:
            raise ProvisionError(f"{path}:{n}: not a 'username:hash' line")
        entries[user] = stored
    return entries


# ---- the whole run ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewSecret:
    principal: Principal
    secret: str


@dataclass(frozen=True, slots=True)
class Outcome:
    principals: list[Principal]
    created: list[NewSecret]  # new or rotated credentials, the only time a secret exists
    kept: list[str]  # usernames whose existing hash was kept
    removed: list[str]  # usernames in the old file that no scheme needs any more


def provision(
    principals: Sequence[Principal],
    existing: dict[str, str],
    rotate: Iterable[str] = (),
    rotate_all: bool = False,
) -> tuple[Outcome, dict[str, str]]:
    """Decide each client's hash: keep what is already issued (devices in the field hold those
    secrets), create the missing ones and those asked to rotate. Returns the outcome and the
    new password-file entries, in ``principals`` order."""
    wanted = {p.username for p in principals}
    rotate_set = set(rotate)
    unknown = sorted(rotate_set - wanted)
    if unknown:
        raise ProvisionError(f"cannot rotate unknown usernames: {', '.join(unknown)}")
    entries: dict[str, str] = {}
    created: list[NewSecret] = []
    kept: list[str] = []
    for p in principals:
        old = existing.get(p.username)
        if old is not None and not rotate_all and p.username not in rotate_set:
            entries[p.username] = old
            kept.append(p.username)
            continue
        secret = secrets.token_urlsafe(SECRET_BYTES)
        entries[p.username] = hash_password(secret)
        created.append(NewSecret(p, secret))
    removed = sorted(set(existing) - wanted)
    return Outcome(list(principals), created, kept, removed), entries


def render_password_file(entries: dict[str, str]) -> str:
    return "".join(f"{user}:{stored}\n" for user, stored in entries.items())


def secrets_document(created: Sequence[NewSecret], generated_at: datetime) -> str:
    """The new secrets as JSON, for the operator to hand to each device, handset and service."""
    doc = {
        "generated_at": generated_at.isoformat(timespec="seconds"),
        "credentials": [
            {
                "username": n.principal.username,
                "password": n.secret,
                "kind": n.principal.kind.value,
                "scheme": n.principal.scheme,
                "subject": n.principal.subject,
            }
            for n in created
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def write_private(path: Path, text: str, mode: int, exclusive: bool = False) -> None:
    """Write ``text`` to ``path`` with ``mode`` from the first byte (never briefly readable by
    others), via a temporary file and rename so a crash leaves the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        return
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # O_CREAT's mode is filtered by the umask
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def now_utc() -> datetime:
    return datetime.now(UTC)
