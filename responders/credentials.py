"""Per-carer sign-in tokens for the carer web page.

Tokens are random (128 bits) and shown once when issued; only their SHA-256 is stored, in a
JSON file outside the repository (``TELECARE_CARER_AUTH__FILE``). A leaked file does not let
anyone sign in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from pathlib import Path


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class CredentialStore:
    def __init__(self, hashes: dict[str, str] | None = None) -> None:
        self.hashes = dict(hashes or {})

    @classmethod
    def load(cls, path: Path) -> CredentialStore:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of carer -> token hash")
        return cls({str(k): str(v) for k, v in data.items()})

    def verify(self, scheme: str, carer_id: str, token: str) -> bool:
        expected = self.hashes.get(f"{scheme}/{carer_id}")
        return expected is not None and hmac.compare_digest(expected, hash_token(token))

    def issue(self, scheme: str, carer_ids: Iterable[str]) -> dict[str, str]:
        """New tokens for these carers (replacing old ones); returns carer -> plain token."""
        out = {}
        for cid in carer_ids:
            token = secrets.token_urlsafe(16)
            self.hashes[f"{scheme}/{cid}"] = hash_token(token)
            out[cid] = token
        return out

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.hashes, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(path)
