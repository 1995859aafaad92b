"""The account and session store: a small SQLite file beside the journal, outside the repo.

Why SQLite and not TimescaleDB: signing in, and every request's session check, must keep
working while the database is away (carers still need their offers). The file is shared by the
gateway and the ``telecare users`` command, so a user disabled from the command line is locked
out on their very next request.

- Secrets (passwords, carer tokens) are kept only as argon2id hashes.
- A session id is 256 random bits, handed to the client once; only its SHA-256 is stored, so a
  copy of this file signs nobody in.
- Sessions end at a fixed expiry, after an idle period, at logout, and when the user is
  disabled or their secret is reset.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api_models import Role

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username    TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    scheme      TEXT,
    carer_id    TEXT,
    secret_hash TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash     TEXT PRIMARY KEY,
    username    TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL,
    last_seen   REAL NOT NULL,
    address     TEXT
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (username);
CREATE TABLE IF NOT EXISTS audit_outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    entry       TEXT NOT NULL
);
"""

# Touching last_seen on every request would make every read a write; a minute is precise
# enough for an idle timeout measured in hours.
_TOUCH_EVERY_S = 60.0

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user does not exist, so an unknown name costs the same time as a wrong
    secret and cannot be told apart by timing. Made on first use, not at import (one argon2
    hash, about 0.1 s, is off the gateway's start path); ``verify`` asks for it on every call,
    so the first verification costs the same whether or not the user exists."""
    return _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A user-store request that cannot be done (unknown user, name taken...)."""


def new_secret() -> str:
    """A generated secret: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def carer_username(scheme: str, carer_id: str) -> str:
    return f"{scheme}/{carer_id}"


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: Role
    scheme: str | None
    carer_id: str | None
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Session:
    """A live session as a request sees it: who, and the hash that names the session."""

    id_hash: str
    username: str
    role: Role
    scheme: str | None
    carer_id: str | None
    expires_at: datetime


def _user(row: sqlite3.Row) -> User:
    return User(
        username=row["username"],
        role=Role(row["role"]),
        scheme=row["scheme"],
        carer_id=row["carer_id"],
        disabled=bool(row["disabled"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


class UserStore:
    """Accounts and sessions in one SQLite file; safe to use from several processes."""

    def __init__(
        self,
        path: Path,
        session_ttl_s: float = 12 * 3600,
        session_idle_s: float = 2 * 3600,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.session_ttl_s = session_ttl_s
        self.session_idle_s = session_idle_s
        self._time = wall_clock  # real Unix time: sessions never run on the scheme clock
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.executescript(_SCHEMA)
        try:
            path.chmod(0o600)
        except OSError:
            pass  # not ours to change (a mounted volume); the directory guards it

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=10000")
            yield db
        finally:
            db.close()

    # ---- users -----------------------------------------------------------------------------

    def add(
        self,
        username: str,
        role: Role,
        scheme: str | None = None,
        carer_id: str | None = None,
        secret: str | None = None,
    ) -> str:
        """Create an account; returns its secret (generated unless given). Shown once."""
        if role is Role.CARER:
            if not scheme or not carer_id:
                raise UserError("a carer account needs its scheme and carer id")
            if username != carer_username(scheme, carer_id):
                raise UserError(f"a carer's user name is <scheme>/<carer id>: {scheme}/{carer_id}")
        elif scheme or carer_id:
            raise UserError("only carer accounts belong to a scheme and carer id")
        secret = secret or new_secret()
        now = _now_iso()
        with self._db() as db:
            try:
                db.execute(
                    "INSERT INTO users (username, role, scheme, carer_id, secret_hash, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (username, role.value, scheme, carer_id, _hasher.hash(secret), now, now),
                )
            except sqlite3.IntegrityError as exc:
                raise UserError(f"user {username!r} already exists") from exc
        return secret

    def get(self, username: str) -> User | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        return _user(row) if row else None

    def users(self) -> list[User]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM users ORDER BY role, username").fetchall()
        return [_user(r) for r in rows]

    def any_enabled(self, role: Role) -> bool:
        with self._db() as db:
            row = db.execute(
                "SELECT 1 FROM users WHERE role = ? AND disabled = 0 LIMIT 1", (role.value,)
            ).fetchone()
        return row is not None

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable (ending every session at once) or re-enable an account."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute(
                "UPDATE users SET disabled = ?, updated_at = ? WHERE username = ?",
                (int(disabled), _now_iso(), username),
            )
            if cur.rowcount == 0:
                db.execute("ROLLBACK")
                raise UserError(f"no user {username!r}")
            if disabled:
                db.execute("DELETE FROM sessions WHERE username = ?", (username,))
            db.execute("COMMIT")

    def reset(self, username: str, secret: str | None = None) -> str:
        """A new secret for an account (every session of it ends); returns the secret."""
        secret = secret or new_secret()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            cur = db.execute(
                "UPDATE users SET secret_hash = ?, updated_at = ? WHERE username = ?",
                (_hasher.hash(secret), _now_iso(), username),
            )
            if cur.rowcount == 0:
                db.execute("ROLLBACK")
                raise UserError(f"no user {username!r}")
            db.execute("DELETE FROM sessions WHERE username = ?", (username,))
            db.execute("COMMIT")
        return secret

    def verify(self, username: str, secret: str) -> User | None:
        """The account if the secret is right and it is enabled; None otherwise, taking the
        same time whether or not the user exists. Slow on purpose (argon2): call off the loop."""
        with self._db() as db:
            row = db.execute("SELECT * FROM users WHERE username = ?", (username,)).fetchone()
        dummy = _dummy_hash()
        stored = row["secret_hash"] if row else dummy
        try:
            _hasher.verify(stored, secret)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or row["disabled"]:
            return None
        if _hasher.check_needs_rehash(stored):
            with self._db() as db:
                db.execute(
                    "UPDATE users SET secret_hash = ? WHERE username = ?",
                    (_hasher.hash(secret), username),
                )
        return _user(row)

    # ---- sessions --------------------------------------------------------------------------

    def open_session(self, username: str, address: str | None) -> tuple[str, datetime]:
        """A new session for an account; returns (token, expiry). The token is shown once."""
        token = secrets.token_urlsafe(32)
        now = self._time()
        expires = now + self.session_ttl_s
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (now,))
            db.execute(
                "INSERT INTO sessions (id_hash, username, created_at, expires_at, last_seen,"
                " address) VALUES (?, ?, ?, ?, ?, ?)",
                (session_hash(token), username, now, expires, now, address),
            )
        return token, datetime.fromtimestamp(expires, UTC)

    def session(self, token: str) -> Session | None:
        """The live session this token names, or None (unknown, expired, idle too long, ended,
        or its user disabled)."""
        h = session_hash(token)
        now = self._time()
        with self._db() as db:
            row = db.execute(
                "SELECT s.id_hash, s.expires_at, s.last_seen, u.username, u.role, u.scheme,"
                " u.carer_id, u.disabled FROM sessions s JOIN users u USING (username)"
                " WHERE s.id_hash = ?",
                (h,),
            ).fetchone()
            if row is None:
                return None
            if row["disabled"] or now >= row["expires_at"]:
                db.execute("DELETE FROM sessions WHERE id_hash = ?", (h,))
                return None
            if now - row["last_seen"] >= self.session_idle_s:
                db.execute("DELETE FROM sessions WHERE id_hash = ?", (h,))
                return None
            if now - row["last_seen"] >= _TOUCH_EVERY_S:
                db.execute("UPDATE sessions SET last_seen = ? WHERE id_hash = ?", (now, h))
        return Session(
            id_hash=h,
            username=row["username"],
            role=Role(row["role"]),
            scheme=row["scheme"],
            carer_id=row["carer_id"],
            expires_at=datetime.fromtimestamp(row["expires_at"], UTC),
        )

    def is_live(self, id_hash: str) -> bool:
        """Is this session still open (for long-lived streams to notice a logout)?"""
        with self._db() as db:
            row = db.execute(
                "SELECT u.disabled, s.expires_at FROM sessions s JOIN users u USING (username)"
                " WHERE s.id_hash = ?",
                (id_hash,),
            ).fetchone()
        return row is not None and not row["disabled"] and self._time() < row["expires_at"]

    def end_session(self, id_hash: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM sessions WHERE id_hash = ?", (id_hash,))

    # ---- the audit outbox (see gateway.auth.audit) -----------------------------------------

    def outbox_put(self, entry_json: str) -> None:
        with self._db() as db:
            db.execute("INSERT INTO audit_outbox (entry) VALUES (?)", (entry_json,))

    def outbox_batch(self, limit: int = 200) -> list[tuple[int, str]]:
        with self._db() as db:
            rows = db.execute(
                "SELECT seq, entry FROM audit_outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [(int(r["seq"]), str(r["entry"])) for r in rows]

    def outbox_done(self, upto_seq: int) -> None:
        with self._db() as db:
            db.execute("DELETE FROM audit_outbox WHERE seq <= ?", (upto_seq,))
