"""The audit trail, for managers and admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api_models import AuditEntry, Role
from gateway.api.deps import QueriesDep
from gateway.api.errors import errors
from gateway.api.ports import DatabaseUnavailable
from gateway.api.security import allow

router = APIRouter(tags=["audit"])


@router.get(
    "/api/v1/audit",
    dependencies=[allow(Role.MANAGER, Role.ADMIN)],
    responses=errors(401, 403, 503),
)
async def audit_trail(
    queries: QueriesDep,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
    # Patterns, not just lengths: a NUL in a filter reached PostgreSQL (which refuses NUL in
    # text) and came back as a 500.
    username: Annotated[str | None, Query(max_length=128, pattern=r"^[A-Za-z0-9._@/-]+$")] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9_.]+$")] = None,
) -> list[AuditEntry]:
    """Audit entries, newest first: sign-ins and failures, operator actions, account changes.
    (Entries reach the database within seconds; while it is away they wait in the outbox.)"""
    try:
        return await queries.audit(limit, username, action)
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
