"""A night at Hazelhurst Court on a scaled clock, with handsets over MQTT (shared by tests)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from devices.events import DeviceEvent, EventKind
from devices.topics import TopicLayout
from tests.conftest import GatewayEnv, Services
from tests.engine_helpers import HZC, NIGHT
from tests.mqtt_helpers import Recorder, action, presence

SPEED = 10.0  # the 60 s offer timeout takes 6 s of real time


class Night:
    """A gateway on scheme time starting at 02:14, two carers logged in with live handsets."""

    def __init__(self, services: Services, gw: GatewayEnv) -> None:
        self.gw = gw
        self.anchor = time.time()
        gw.process.env.update(
            {
                "TELECARE_CLOCK__SPEED": str(SPEED),
                "TELECARE_CLOCK__START": NIGHT.isoformat(),
                "TELECARE_CLOCK__ANCHOR": str(self.anchor),
                "TELECARE_ENGINE__TICK_S": "5",
            }
        )
        self.layout = TopicLayout(gw.topic_root, gw.zigbee_root)
        root = gw.topic_root
        self.rec = Recorder(
            services.mqtt_host,
            services.mqtt_port,
            [
                f"{root}/{HZC.id}/carers/+/dispatch",
                f"{root}/{HZC.id}/control/alerts",
                f"{root}/{HZC.id}/careline/status/+",
            ],
        )
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def now(self) -> datetime:
        return NIGHT + (datetime.now(UTC) - datetime.fromtimestamp(self.anchor, UTC)) * SPEED

    def login(self, carer: str, flat: str) -> None:
        self.rec.publish(
            self.layout.carer(HZC.id, carer, "presence"), presence("login", self.now(), flat=flat)
        )

    def on_shift(self, positions: dict[str, str]) -> None:
        """Log carers in at these flats, keep their handsets beating, let the engine see it."""
        for carer, flat in positions.items():
            self.login(carer, flat)
        self.start_heartbeats(list(positions))
        time.sleep(1.0)

    def start_heartbeats(self, carers: list[str]) -> None:
        def beat() -> None:
            while not self._stop.wait(1.0):
                for c in carers:
                    self.rec.publish(
                        self.layout.carer(HZC.id, c, "presence"), presence("heartbeat", self.now())
                    )

        self._beat = threading.Thread(target=beat, daemon=True)
        self._beat.start()

    def press(self, device: str) -> str:
        ev = DeviceEvent(
            event_id=uuid.uuid4(),
            device_id=device,
            kind=EventKind.PENDANT_PRESS,
            occurred_at=self.now(),
        )
        self.rec.publish(self.layout.device_events(HZC.id, device), ev.model_dump(mode="json"))
        return str(ev.event_id)

    def act(
        self, carer: str, kind: str, alarm_id: str, offer_id: str | None = None, **kw: object
    ) -> None:
        self.rec.publish(
            self.layout.carer(HZC.id, carer, "actions"),
            action(kind, alarm_id, self.now(), offer_id, **kw),
        )

    def offers_to(self, carer: str) -> list[dict[str, Any]]:
        return self.rec.dispatched(carer, "offer")

    def wait_dispatch(
        self, carer: str, typ: str, timeout: float = 20, **match: object
    ) -> dict[str, Any]:
        return self.rec.wait_dispatch(carer, typ, timeout, **match)

    def close(self) -> None:
        self._stop.set()
        self.rec.close()


@pytest.fixture
def night(services: Services, gateway: GatewayEnv) -> Iterator[Night]:
    n = Night(services, gateway)
    yield n
    n.close()


def rows(dsn: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, args).fetchall()  # type: ignore[arg-type]
