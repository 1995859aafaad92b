"""MQTT topic layout: which topic carries what, and parsing a topic back into its parts.

``<root>/<scheme>/devices/<device_id>/events``   canonical device events
``<root>/<scheme>/careline/callouts``             Careline call-outs
``<root>/<scheme>/devices/<device_id>/receipts`` the gateway's receipts to a device
``<root>/<scheme>/careline/receipts``             the gateway's receipts to the Careline
``<root>/<scheme>/carers/<carer_id>/visits``      a carer's planned-visit check-in/out
``<zigbee_root>/<friendly_name>``                 Zigbee2MQTT device state
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Channel(StrEnum):
    DEVICE_EVENT = "device_event"
    CALLOUT = "callout"
    ZIGBEE = "zigbee"
    CARER_ACTION = "carer_action"
    CARER_PRESENCE = "carer_presence"
    CARER_VISIT = "carer_visit"


@dataclass(frozen=True, slots=True)
class TopicInfo:
    channel: Channel
    scheme: str | None
    subject: str | None  # device id, or Zigbee friendly name


@dataclass(frozen=True, slots=True)
class TopicLayout:
    root: str = "telecare"
    zigbee_root: str = "zigbee2mqtt"

    def device_events(self, scheme: str, device_id: str) -> str:
        return f"{self.root}/{scheme}/devices/{device_id}/events"

    def callouts(self, scheme: str) -> str:
        return f"{self.root}/{scheme}/careline/callouts"

    def device_receipts(self, scheme: str, device_id: str) -> str:
        return f"{self.root}/{scheme}/devices/{device_id}/receipts"

    def careline_receipts(self, scheme: str) -> str:
        return f"{self.root}/{scheme}/careline/receipts"

    def is_receipt(self, topic: str) -> bool:
        """A receipt topic: ours, heard back through ``devices/#``, never an input."""
        parts = topic.split("/")
        return (
            len(parts) == 5
            and parts[0] == self.root
            and parts[2] == "devices"
            and parts[4] == "receipts"
        )

    def fence(self, client_id: str) -> str:
        """The gateway's own fence topic (``gateway.fence``): published and heard back by the
        gateway alone, never a scheme's traffic (no scheme is called ``_gateway``)."""
        return f"{self.root}/_gateway/{client_id}/fence"

    def carer(self, scheme: str, carer_id: str, leaf: str) -> str:
        """``leaf`` is ``actions``/``presence``/``visits`` (from the handset) or ``dispatch``
        (to it)."""
        return f"{self.root}/{scheme}/carers/{carer_id}/{leaf}"

    def careline_status(self, scheme: str, callout_id: str) -> str:
        return f"{self.root}/{scheme}/careline/status/{callout_id}"

    def control_alerts(self, scheme: str) -> str:
        return f"{self.root}/{scheme}/control/alerts"

    def subscriptions(self) -> list[str]:
        """Filters the gateway subscribes to for device traffic.

        ``devices/#`` is broader than the event topic on purpose: a device publishing to a
        slightly wrong topic is dead-lettered with the reason instead of going unheard.
        """
        return [
            f"{self.root}/+/devices/#",
            f"{self.root}/+/careline/callouts",
            f"{self.root}/+/carers/+/actions",
            f"{self.root}/+/carers/+/presence",
            f"{self.root}/+/carers/+/visits",
            f"{self.zigbee_root}/+",
        ]

    def parse(self, topic: str) -> TopicInfo | None:
        """The channel a topic belongs to, or None if it is not one we accept."""
        parts = topic.split("/")
        if len(parts) == 2 and parts[0] == self.zigbee_root and parts[1]:
            return TopicInfo(Channel.ZIGBEE, None, parts[1])
        if (
            len(parts) == 5
            and parts[0] == self.root
            and parts[2] == "devices"
            and (parts[4] == "events" and parts[1] and parts[3])
        ):
            return TopicInfo(Channel.DEVICE_EVENT, parts[1], parts[3])
        if len(parts) == 4 and parts[0] == self.root and parts[2:] == ["careline", "callouts"]:
            return TopicInfo(Channel.CALLOUT, parts[1], None)
        if len(parts) == 5 and parts[0] == self.root and parts[2] == "carers" and parts[3]:
            if parts[4] == "actions":
                return TopicInfo(Channel.CARER_ACTION, parts[1], parts[3])
            if parts[4] == "presence":
                return TopicInfo(Channel.CARER_PRESENCE, parts[1], parts[3])
            if parts[4] == "visits":
                return TopicInfo(Channel.CARER_VISIT, parts[1], parts[3])
        return None
