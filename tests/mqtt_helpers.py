"""A recording MQTT client for integration tests: subscribe, publish, wait for messages."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Received:
    topic: str
    body: dict[str, Any]
    at: float  # monotonic


class Recorder:
    def __init__(self, host: str, port: int, filters: list[str]) -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in filters])
        assert subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client: object, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"raw": msg.payload.decode(errors="replace")}
        with self._cond:
            self.messages.append(Received(msg.topic, body, time.monotonic()))
            self._cond.notify_all()

    def publish(self, topic: str, body: dict[str, Any]) -> None:
        info = self.client.publish(topic, json.dumps(body, default=str), qos=1)
        info.wait_for_publish(10)

    def wait(self, pred, timeout: float, what: str) -> Received:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(f"{m.topic} {m.body}" for m in self.messages[-15:])
                    raise AssertionError(f"timed out waiting for {what}; last messages:\n{seen}")
                self._cond.wait(left)

    def matching(self, pred) -> list[Received]:  # type: ignore[no-untyped-def]
        with self._cond:
            return [m for m in self.messages if pred(m)]

    @staticmethod
    def _dispatch_match(carer: str, typ: str, match: dict[str, object]):  # type: ignore[no-untyped-def]
        return lambda m: (
            m.topic.endswith(f"/carers/{carer}/dispatch")
            and m.body.get("type") == typ
            and all(m.body.get(k) == v for k, v in match.items())
        )

    def wait_dispatch(
        self, carer: str, typ: str, timeout: float = 20, **match: object
    ) -> dict[str, Any]:
        """The first message of ``typ`` on the carer's dispatch topic matching ``match``."""
        pred = self._dispatch_match(carer, typ, match)
        return self.wait(pred, timeout, f"{typ} to {carer} {match}").body

    def dispatched(self, carer: str, typ: str, **match: object) -> list[dict[str, Any]]:
        return [m.body for m in self.matching(self._dispatch_match(carer, typ, match))]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def presence(what: str, at: datetime, **pos: Any) -> dict[str, Any]:
    return {"presence_id": str(uuid.uuid4()), "what": what, "at": at.isoformat(), **pos}


def action(
    kind: str, alarm_id: str, at: datetime, offer_id: str | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "action_id": str(uuid.uuid4()),
        "action": kind,
        "alarm_id": alarm_id,
        "offer_id": offer_id,
        "at": at.isoformat(),
        **kw,
    }
