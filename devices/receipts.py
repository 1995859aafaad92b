"""Receipts: the gateway's answer to every device event and Careline call-out (protocol v1).

As a SCAIP receiver acknowledges each message and sets the device's heartbeat interval, the
gateway publishes one receipt per message once the message is in its durable journal. A device
keeps each event and resends it with the same ``event_id`` until it holds a receipt of any
status; ``refused`` is final. The resend rule is :func:`resend_delay`; the topics are
``TopicLayout.device_receipts`` and ``TopicLayout.careline_receipts``.
"""

from __future__ import annotations

import random
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

# Resend rule: first resend 2 s after the first send, doubling, capped at 30 s, with jitter.
RESEND_FIRST_S = 2.0
RESEND_CAP_S = 30.0
RESEND_JITTER = 0.2  # +/- 20 %, so a thousand devices back from a power cut do not resend in step


class ReceiptStatus(StrEnum):
    ACCEPTED = "accepted"  # journaled now: the gateway has it, stop resending
    DUPLICATE = "duplicate"  # journaled before (a resend or a redelivery): stop resending
    REFUSED = "refused"  # dead-lettered with ``reason``: resending the same bytes cannot help


class DeviceReceipt(BaseModel):
    """On ``<root>/<scheme>/devices/<device_id>/receipts``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    event_id: str | None = Field(description="null only when it could not be read from the event")
    status: ReceiptStatus
    reason: str | None = Field(default=None, description="the dead-letter reason when refused")
    heartbeat_s: int | None = Field(
        default=None, description="heartbeat interval the scheme expects; null if unknown device"
    )
    at: AwareDatetime


class CalloutReceipt(BaseModel):
    """On ``<root>/<scheme>/careline/receipts``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    callout_id: str | None
    status: ReceiptStatus
    reason: str | None = None
    heartbeat_s: int | None = None
    at: AwareDatetime


def resend_delay(resends_so_far: int, rng: random.Random | None = None) -> float:
    """Real seconds to wait before the next resend of an event not yet receipted."""
    base = min(RESEND_FIRST_S * 2.0 ** min(resends_so_far, 16), RESEND_CAP_S)
    jitter: float = (rng or random.Random()).uniform(1 - RESEND_JITTER, 1 + RESEND_JITTER)
    return min(base * jitter, RESEND_CAP_S)
