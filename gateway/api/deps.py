"""What the routes get injected: the narrow interfaces, held on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from gateway.api.ports import ControlInbox, HealthView, LiveView, Queries
from gateway.config import Settings


@dataclass(frozen=True, slots=True)
class ApiDeps:
    settings: Settings
    live: LiveView
    inbox: ControlInbox
    queries: Queries
    health: HealthView


def api_deps(request: Request) -> ApiDeps:
    deps: ApiDeps = request.app.state.deps
    return deps


def _live(request: Request) -> LiveView:
    return api_deps(request).live


def _inbox(request: Request) -> ControlInbox:
    return api_deps(request).inbox


def _queries(request: Request) -> Queries:
    return api_deps(request).queries


def _health(request: Request) -> HealthView:
    return api_deps(request).health


def _settings(request: Request) -> Settings:
    return api_deps(request).settings


LiveDep = Annotated[LiveView, Depends(_live)]
InboxDep = Annotated[ControlInbox, Depends(_inbox)]
QueriesDep = Annotated[Queries, Depends(_queries)]
HealthDep = Annotated[HealthView, Depends(_health)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def known_scheme(live: LiveView, scheme: str | None) -> None:
    """404 for a scheme this gateway does not serve (None means all schemes)."""
    if scheme is not None and live.scheme(scheme) is None:
        raise HTTPException(404, f"scheme {scheme!r} is not served by this gateway")
