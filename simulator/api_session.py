"""Signing the simulator in to the gateway's API (it reads verdict inputs there).

A gateway the simulator starts itself writes its development accounts to a file in the run's
work directory; for a gateway given by URL, ``TELECARE_API_USER``/``TELECARE_API_PASSWORD``
or the development credentials file (``var/dev-credentials.json``) name the account.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from api_models.credentials import load_dev_credentials

# The run's API session: ``sign_in`` fills it, every HTTP client of the run sends it. (One run
# per process talks to one gateway.)
HEADERS: dict[str, str] = {}


def sign_in(base_url: str, credentials: Path | None = None) -> None:
    """Sign the run in (see ``api_headers``); its clients then send the session."""
    HEADERS.clear()
    HEADERS.update(api_headers(base_url, credentials))


def api_headers(base_url: str, credentials: Path | None = None) -> dict[str, str]:
    """``Authorization`` for a new control-room session; raises if it cannot sign in.
    ``credentials``: the file of a gateway this run started (the environment is ignored)."""
    user = os.environ.get("TELECARE_API_USER") if credentials is None else None
    password = os.environ.get("TELECARE_API_PASSWORD") if credentials is None else None
    if not user or not password:
        creds = load_dev_credentials(credentials)
        account = creds.account("control_room") if creds else None
        if account is None:
            raise RuntimeError(
                "no API account for the simulator: set TELECARE_API_USER and"
                " TELECARE_API_PASSWORD (or run against a development gateway)"
            )
        user, password = account.username, account.password
    r = httpx.post(
        f"{base_url}/api/v1/session", json={"username": user, "password": password}, timeout=10
    )
    if r.status_code != 200:
        raise RuntimeError(f"the gateway refused the simulator's sign-in: HTTP {r.status_code}")
    return {"Authorization": f"Bearer {r.json()['token']}"}
