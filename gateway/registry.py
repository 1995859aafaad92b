"""The device registry the decoders consult, built from the loaded scheme files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from devices.scheme import Scheme
from devices.visits import VisitSchedule


class SchemeRegistry:
    """Schemes this gateway serves, with O(1) device, resident and Zigbee lookups."""

    def __init__(
        self, schemes: Iterable[Scheme], schedules: Mapping[str, VisitSchedule] | None = None
    ) -> None:
        self.schemes: dict[str, Scheme] = {}
        self.schedules: dict[str, VisitSchedule] = dict(schedules or {})
        self._visits = {sid: set(s.visits()) for sid, s in self.schedules.items()}
        # Extra visits added tonight through the API; kept in step by the engine service.
        self.extra_visits: dict[str, frozenset[str]] = {}
        self._zigbee: dict[str, tuple[str, str]] = {}
        for scheme in schemes:
            if scheme.id in self.schemes:
                raise ValueError(f"scheme {scheme.id!r} is loaded twice")
            self.schemes[scheme.id] = scheme
            for device in scheme.devices:
                name = device.zigbee_friendly_name
                if name is None:
                    continue
                if name in self._zigbee:
                    raise ValueError(f"zigbee name {name!r} is used by two schemes")
                self._zigbee[name] = (scheme.id, device.device_id)

    def has_scheme(self, scheme: str) -> bool:
        return scheme in self.schemes

    def has_device(self, scheme: str, device_id: str) -> bool:
        s = self.schemes.get(scheme)
        return s is not None and s.device(device_id) is not None

    def has_resident(self, scheme: str, client_ref: str) -> bool:
        s = self.schemes.get(scheme)
        return s is not None and s.resident(client_ref) is not None

    def has_carer(self, scheme: str, carer_id: str) -> bool:
        s = self.schemes.get(scheme)
        return s is not None and s.carer(carer_id) is not None

    def has_visit(self, scheme: str, visit_id: str) -> bool:
        return visit_id in self._visits.get(scheme, ()) or visit_id in self.extra_visits.get(
            scheme, frozenset()
        )

    def heartbeat_s(self, scheme: str, device_id: str) -> int | None:
        """Seconds between heartbeats the scheme expects of a device; None if unknown."""
        s = self.schemes.get(scheme)
        device = s.device(device_id) if s is not None else None
        return device.expected_heartbeat_s if device is not None else None

    def zigbee_device(self, friendly_name: str) -> tuple[str, str] | None:
        return self._zigbee.get(friendly_name)
