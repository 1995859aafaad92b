"""The gateway's HTTP API: one module per resource, routes depending on narrow interfaces
(``ports``), response models from ``api_models`` (shared with the clients)."""

from gateway.api.app import create_app
from gateway.api.deps import ApiDeps

__all__ = ["ApiDeps", "create_app"]
