"""Base shape and the small answers shared by many routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Shape(BaseModel):
    """Frozen, and tolerant of fields it does not know (a newer gateway adds fields)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Status(Shape):
    """A plain acknowledgement: ``{"status": "ok"}``, ``{"status": "signed out"}``..."""

    status: str


class Accepted(Shape):
    """A change queued for the engine (HTTP 202): it is journaled, then applied."""

    status: str = "accepted"
