"""Fakes shared by unit tests."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FakeRegistry:
    """A registry with one scheme, some canonical devices, residents and Zigbee names."""

    scheme: str = "test-court"
    devices: set[str] = field(default_factory=lambda: {"pendant-001", "hub-001"})
    residents: set[str] = field(default_factory=lambda: {"TST-0001"})
    carers: set[str] = field(default_factory=lambda: {"cw-01"})
    zigbee: dict[str, str] = field(default_factory=lambda: {"flat-1-front-door": "door-001"})
    visits: set[str] = field(default_factory=lambda: {"v-01"})

    def has_scheme(self, scheme: str) -> bool:
        return scheme == self.scheme

    def has_device(self, scheme: str, device_id: str) -> bool:
        return scheme == self.scheme and device_id in self.devices

    def has_resident(self, scheme: str, client_ref: str) -> bool:
        return scheme == self.scheme and client_ref in self.residents

    def has_carer(self, scheme: str, carer_id: str) -> bool:
        return scheme == self.scheme and carer_id in self.carers

    def has_visit(self, scheme: str, visit_id: str) -> bool:
        return scheme == self.scheme and visit_id in self.visits

    def zigbee_device(self, friendly_name: str) -> tuple[str, str] | None:
        device = self.zigbee.get(friendly_name)
        return (self.scheme, device) if device else None
