"""Who may change things. (Accounts and roles replace the single control token.)"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Header, HTTPException

from gateway.api.deps import SettingsDep


def control(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """Control-room changes need the bearer token when one is configured."""
    token = settings.http.control_token
    if token is None:
        return
    expected = f"Bearer {token.get_secret_value()}".encode()
    given = (authorization or "").encode("utf-8", "replace")
    if not hmac.compare_digest(given, expected):
        raise HTTPException(401, "control-room token required (Authorization: Bearer ...)")
