"""The development credentials file the gateway writes on its first development start
(``TELECARE_AUTH__DEV_CREDENTIALS_FILE``, default ``var/dev-credentials.json``, mode 0600),
read by ``make demo``, the TUI, the simulator and the ``telecare`` command."""

from __future__ import annotations

import json
import os
from pathlib import Path

from api_models.common import Shape

DEFAULT_FILE = Path("var/dev-credentials.json")


class Account(Shape):
    username: str
    password: str


class DevCredentials(Shape):
    url: str | None = None
    accounts: dict[str, Account]

    def account(self, role: str) -> Account | None:
        return self.accounts.get(role)


def credentials_file() -> Path:
    return Path(os.environ.get("TELECARE_AUTH__DEV_CREDENTIALS_FILE") or DEFAULT_FILE)


def load_dev_credentials(path: Path | None = None) -> DevCredentials | None:
    """The file's accounts, or None when there is no such file (or it cannot be read)."""
    path = path or credentials_file()
    try:
        return DevCredentials.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
