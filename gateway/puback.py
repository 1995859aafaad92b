"""QoS 1 publishes that say what the broker answered.

aiomqtt's ``publish`` returns once a PUBACK arrives, whatever its reason code: a publish the
broker refused (MQTT 5: 0x87 not authorised, 0x97 quota exceeded, 0x95 packet too large...)
looks the same as one it accepted. paho hands the reason code to ``on_publish`` (callback API
version 2), so we hook that callback, keep aiomqtt's own handler running, and resolve one future
per message id with the code. aiomqtt drives paho from the event loop thread, so the callback
runs there too and may touch futures directly.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

# Reason codes below 0x80 are successes (0x00 success, 0x10 no matching subscribers).
FIRST_FAILURE_CODE = 0x80

REASON_NAMES = {
    0x80: "unspecified error",
    0x83: "implementation specific error",
    0x87: "not authorised",
    0x90: "topic name invalid",
    0x91: "packet identifier in use",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x99: "payload format invalid",
}


@dataclass(frozen=True, slots=True)
class PublishOutcome:
    """``code`` is the PUBACK reason code, or None when no PUBACK came (timeout, link lost)."""

    code: int | None
    detail: str

    @property
    def ok(self) -> bool:
        return self.code is not None and self.code < FIRST_FAILURE_CODE

    @property
    def label(self) -> str:
        """A short metric label: ok, refused or unacknowledged."""
        if self.code is None:
            return "unacknowledged"
        return "ok" if self.ok else "refused"


def _expire(fut: asyncio.Future[int]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


def describe(code: int) -> str:
    return f"{REASON_NAMES.get(code, 'refused')} ({code})"


class AckedPublisher:
    """Publishes QoS 1 on one connected aiomqtt client and returns each PUBACK's reason code."""

    def __init__(self, client: aiomqtt.Client, timeout_s: float = 10.0) -> None:
        self._paho: paho.Client = client._client
        self._timeout_s = timeout_s
        self._waiting: dict[int, asyncio.Future[int]] = {}
        inner: Any = self._paho.on_publish

        def on_publish(c: paho.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
            fut = self._waiting.pop(mid, None)
            if fut is not None and not fut.done():
                fut.set_result(int(getattr(rc, "value", rc)))
            if inner is not None:
                inner(c, userdata, mid, rc, props)

        self._paho.on_publish = on_publish

    @property
    def in_flight(self) -> int:
        return len(self._waiting)

    async def publish(self, topic: str, payload: str | bytes) -> PublishOutcome:
        """Publish at QoS 1 and wait for the broker's answer (never raises for a refusal)."""
        loop = asyncio.get_running_loop()
        info = self._paho.publish(topic, payload, qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return PublishOutcome(None, f"not sent: {paho.error_string(info.rc)}")
        fut: asyncio.Future[int] = loop.create_future()
        self._waiting[info.mid] = fut
        # A timer on the future, not ``asyncio.wait_for``: that wraps every publish in a task
        # of its own, and a receipt per device message made it a hot spot of the ingest loop.
        timer = loop.call_later(self._timeout_s, _expire, fut)
        try:
            code = await fut
        except TimeoutError:
            return PublishOutcome(None, f"no PUBACK within {self._timeout_s:g}s")
        finally:
            timer.cancel()
            self._waiting.pop(info.mid, None)
        if code >= FIRST_FAILURE_CODE:
            return PublishOutcome(code, f"refused by the broker: {describe(code)}")
        return PublishOutcome(code, "ok")
