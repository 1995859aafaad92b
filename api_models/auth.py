"""Accounts, roles, sessions and the audit trail."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from api_models.common import Shape


class Role(StrEnum):
    CARER = "carer"  # their own offers and alarms only
    CONTROL_ROOM = "control_room"  # everything operational
    MANAGER = "manager"  # control room, plus reports with names and the audit trail
    COMMISSIONER = "commissioner"  # aggregates and client references only
    ADMIN = "admin"  # users, configuration and the audit trail


class LoginIn(Shape):
    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)


class SessionOut(Shape):
    """A new session: send ``Authorization: Bearer <token>`` (or use the cookie it set)."""

    token: str
    username: str
    role: Role
    expires_at: datetime


class SessionInfo(Shape):
    """``GET /api/v1/session``: who this session belongs to."""

    username: str
    role: Role
    scheme: str | None = None
    carer_id: str | None = None
    expires_at: datetime


class UserIn(Shape):
    """``POST /api/v1/users``: a new account; the secret is generated and shown once."""

    username: str = Field(min_length=3, max_length=128, pattern=r"^[A-Za-z0-9._@/-]+$")
    role: Role
    scheme: str | None = Field(default=None, max_length=64, description="Carers only.")
    carer_id: str | None = Field(default=None, max_length=64, description="Carers only.")


class UserOut(Shape):
    username: str
    role: Role
    scheme: str | None = None
    carer_id: str | None = None
    disabled: bool = False
    created_at: datetime
    updated_at: datetime


class UserReset(Shape):
    """A new secret for an account, shown once (only its argon2 hash is kept)."""

    username: str
    role: Role
    secret: str


class AuditEntry(Shape):
    """One row of the append-only audit trail."""

    at: datetime
    username: str | None = None
    role: str | None = None
    action: str
    target: str | None = None
    outcome: str
    address: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
