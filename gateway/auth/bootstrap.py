"""No open mode, even in development: the first start creates accounts to sign in with.

In development and test, when the store has no enabled admin, the gateway creates a
development admin and a control-room account with random secrets, prints them once, and
writes them to ``TELECARE_AUTH__DEV_CREDENTIALS_FILE`` (0600, outside the repository) where
``make demo``, the TUI and the simulator pick them up. Production never does this: there the
first admin is made with ``telecare users add``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from api_models import Role
from gateway.auth.audit import AuditTrail
from gateway.auth.store import UserStore

DEV_ACCOUNTS = {Role.ADMIN: "dev-admin", Role.CONTROL_ROOM: "dev-control"}


def write_credentials(path: Path, accounts: dict[str, dict[str, str]], url: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "accounts": accounts}, f, indent=2)
    tmp.replace(path)


def ensure_dev_accounts(
    store: UserStore, audit: AuditTrail, credentials_file: Path, url: str
) -> bool:
    """Create the development accounts if there is no enabled admin; True if it did."""
    if store.any_enabled(Role.ADMIN):
        return False
    accounts: dict[str, dict[str, str]] = {}
    for role, username in DEV_ACCOUNTS.items():
        if store.get(username) is None:
            secret = store.add(username, role)
        else:  # left over, disabled: give it a fresh secret and enable it
            secret = store.reset(username)
            store.set_disabled(username, False)
        accounts[role.value] = {"username": username, "password": secret}
        audit.record("users.add", target=username, detail={"role": role.value, "by": "bootstrap"})
    write_credentials(credentials_file, accounts, url)
    lines = [
        "development accounts created (shown once; also in "
        f"{credentials_file}, readable by you only):",
        *(f"  {role:<13} {a['username']} / {a['password']}" for role, a in accounts.items()),
        '  sign in: POST /api/v1/session {"username": ..., "password": ...}',
    ]
    # Printed, not logged: a secret never goes through the logging pipeline.
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return True
