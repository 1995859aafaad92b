"""Flow control on the ingest connection: never more than a fixed window unacknowledged.

The gateway sends an MQTT 5 Receive Maximum and acknowledges only after the journal commit, so
a conforming broker never has more than that many messages out with it. Mosquitto 2.0.11 (the
Debian bookworm broker) keeps to it only until acknowledgements start flowing
(eclipse-mosquitto issue 2301): measured, a window of 50 became more than 1,300 messages. So
the gateway enforces the window itself as well: when it holds ``limit`` messages unacknowledged
it stops reading the socket (TCP backpressure keeps the rest in the broker's queue), and reads
again once the journal has caught up to half the window. aiomqtt reads whenever the socket is
readable and keeps its reader callback to itself, hence the small subclass below.

Reading stops at the packet that fills the window, so the gateway never holds more than
``limit`` messages unacknowledged, whatever the broker does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.metrics import Metrics


def share_property_tables() -> None:
    """Build paho's MQTT 5 property tables once instead of once per packet.

    paho 2.x gives every ``Properties`` object its own copy of three lookup tables (names,
    identifiers, wire types: about 15 µs to build), and makes one for every PUBLISH read and
    every PUBACK of a receipt, two or three per device message. The tables are never written
    after they are built, so one shared copy serves every object. Idempotent.
    """
    if getattr(Properties, "_tables_shared", False):
        return
    proto = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    tables = {"types": proto.types, "names": proto.names, "properties": proto.properties}

    def __init__(self: Properties, packetType: int) -> None:
        object.__setattr__(self, "packetType", packetType)
        for name, table in tables.items():
            object.__setattr__(self, name, table)

    Properties.__init__ = __init__  # type: ignore[method-assign]
    Properties._tables_shared = True  # type: ignore[attr-defined]


class FlowControlledClient(aiomqtt.Client):
    """An aiomqtt client whose socket reading can be paused and resumed."""

    _reader: Callable[[], None] | None = None
    _fd: int = -1
    _paused: bool = False

    # aiomqtt 2.5's ``_on_socket_open``, but reading one packet at a time (paho's
    # ``loop_read`` reads one per message it has in flight) and stopping once paused.
    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        def callback() -> None:
            try:
                while not self._paused and client._sock is not None:
                    rc = client._packet_read()
                    if rc > 0:
                        client._loop_rc_handle(rc)
                        break
                    if rc == paho.MQTT_ERR_AGAIN:
                        break
            except Exception as exc:
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        self._reader = callback
        self._fd = sock.fileno()
        self._paused = False
        self._loop.call_soon_threadsafe(self._loop.add_reader, self._fd, callback)
        self._loop.call_soon_threadsafe(create_misc_task)

    def pause_reading(self) -> None:
        if not self._paused and self._fd >= 0:
            self._paused = True
            self._loop.remove_reader(self._fd)

    def resume_reading(self) -> None:
        if self._paused and self._fd >= 0 and self._reader is not None:
            self._paused = False
            self._loop.add_reader(self._fd, self._reader)
            # Bytes already buffered (TLS, or a packet half read) are not a readable event.
            self._loop.call_soon(self._reader)

    @property
    def paused(self) -> bool:
        return self._paused


class InFlight:
    """Messages received from the broker and not yet acknowledged, and the most there were;
    pauses the client's reading at ``limit`` and resumes it at half."""

    def __init__(self, metrics: Metrics, limit: int) -> None:
        self.metrics = metrics
        self.limit = limit
        self.now = 0
        self.peak = 0
        self.client: FlowControlledClient | None = None
        # Not before the session is set up: a paused socket would never read the SUBACKs.
        self.armed = False

    def attach(self, client: FlowControlledClient) -> None:
        """A new connection: what the old one had in flight the broker will send again."""
        self.client = client
        self.armed = False
        self.now = 0
        self.metrics.ingest_in_flight.set(0)
        inner: Any = client._client.on_message

        def on_message(c: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
            inner(c, userdata, msg)
            if msg.qos > 0:
                self.received()

        client._client.on_message = on_message

    def arm(self) -> None:
        """Subscribed: from now on a full window pauses reading."""
        self.armed = True
        self._check()

    def _check(self) -> None:
        if self.armed and self.now >= self.limit and self.client is not None:
            if not self.client.paused:
                self.client.pause_reading()
                self.metrics.ingest_paused.inc()

    def received(self) -> None:
        self.now += 1
        if self.now > self.peak:
            self.peak = self.now
            self.metrics.ingest_in_flight_peak.set(self.peak)
        self.metrics.ingest_in_flight.set(self.now)
        self._check()

    def done(self) -> None:
        self.now -= 1
        self.metrics.ingest_in_flight.set(self.now)
        if self.client is not None and self.client.paused and self.now <= self.limit // 2:
            self.client.resume_reading()


T = TypeVar("T")


class TwoLaneQueue(asyncio.Queue[T], Generic[T]):
    """An asyncio queue with an urgent lane: ``get`` returns the oldest urgent item while
    there is one, else the oldest of the rest. Each lane keeps its own order.

    Under load, ingest holds up to a receive window of messages between the socket and the
    journal (measured at 2,000 heartbeats/s: 400-900 in aiomqtt's queue); a pendant press read
    behind them waited for all of them, 0.3-1 s. Which lane a message takes decides only when
    it is journaled, never whether: every message is decoded, journaled and acknowledged the
    same way. ``urgent`` must be cheap and never raise: it runs for every item."""

    urgent: Callable[[T], bool] = staticmethod(lambda item: False)

    def _init(self, maxsize: int) -> None:
        self._queue: deque[T] = deque()
        self._urgent: deque[T] = deque()
        # Set while the urgent lane holds anything: lets a consumer that is waiting to fill a
        # routine batch stop waiting.
        self.urgent_arrived = asyncio.Event()

    def _put(self, item: T) -> None:
        if self.urgent(item):
            self._urgent.append(item)
            self.urgent_arrived.set()
        else:
            self._queue.append(item)

    def _get(self) -> T:
        if self._urgent:
            item = self._urgent.popleft()
            if not self._urgent:
                self.urgent_arrived.clear()
            return item
        return self._queue.popleft()

    def qsize(self) -> int:
        return len(self._queue) + len(self._urgent)

    def empty(self) -> bool:
        return not self._queue and not self._urgent

    @property
    def urgent_waiting(self) -> int:
        return len(self._urgent)


def two_lanes(urgent: Callable[[Any], bool]) -> type[TwoLaneQueue[Any]]:
    """A ``TwoLaneQueue`` class whose urgent lane takes what ``urgent`` says (for aiomqtt's
    ``queue_type``, which it instantiates itself)."""
    return type("UrgentFirstQueue", (TwoLaneQueue,), {"urgent": staticmethod(urgent)})
