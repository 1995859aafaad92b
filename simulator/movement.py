"""Where a simulated carer is and how long they take to get somewhere (the simulator's own
simple estimate, from flat positions on the scheme grid; the gateway has its own)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from devices.scheme import Scheme, SchemeKind

WALK_MPS = 1.2
STAIRS_S_PER_FLOOR = 20.0
LIFT_S = (40.0, 5.0)  # wait, per floor
DRIVE_MPS = 8.0
ROAD_FACTOR = 1.4
PARK_AND_WALK_S = 120.0


@dataclass(frozen=True, slots=True)
class Place:
    """A flat (preferred), or a point in a block (``block`` may be None outdoors)."""

    x: float
    y: float
    floor: int = 0
    block: str | None = None
    flat: str | None = None

    def presence(self) -> dict[str, Any]:
        """Fields for a handset presence message."""
        if self.flat is not None:
            return {"flat": self.flat}
        out: dict[str, Any] = {"x": self.x, "y": self.y, "floor": self.floor}
        if self.block is not None:
            out["block"] = self.block
        return out


def flat_place(scheme: Scheme, flat_id: str) -> Place:
    flat = scheme.flat(flat_id)
    if flat is None:
        raise KeyError(flat_id)
    return Place(flat.position.x, flat.position.y, flat.floor, flat.block, flat.id)


def base_place(scheme: Scheme, zone: str | None) -> Place:
    """A carer's starting point: their zone's block entrance, else the first block's."""
    blocks = list(scheme.iter_blocks())
    block = scheme.block(zone) if zone else None
    if block is None and zone:
        site = next((s for s in scheme.sites if s.id == zone), None)
        block = site.blocks[0] if site else None
    block = block or blocks[0]
    return Place(block.position.x, block.position.y, 0, block.id)


def _floors(scheme: Scheme, block: str | None, n: int) -> float:
    if n == 0:
        return 0.0
    b = scheme.block(block) if block else None
    stairs = n * STAIRS_S_PER_FLOOR
    if b is not None and b.lift:
        return min(stairs, LIFT_S[0] + n * LIFT_S[1])
    return stairs


def travel_seconds(scheme: Scheme, origin: Place, dest: Place) -> float:
    """Expected seconds from ``origin`` to ``dest`` (walking, or driving in the community)."""
    if origin.flat is not None and origin.flat == dest.flat:
        return 0.0
    straight = math.dist((origin.x, origin.y), (dest.x, dest.y))
    if scheme.kind is SchemeKind.COMMUNITY:
        return straight * ROAD_FACTOR / DRIVE_MPS + PARK_AND_WALK_S
    if origin.block == dest.block and origin.block is not None:
        return straight / WALK_MPS + _floors(scheme, dest.block, abs(origin.floor - dest.floor))
    a = scheme.block(origin.block) if origin.block else None
    b = scheme.block(dest.block) if dest.block else None
    ax, ay = (a.position.x, a.position.y) if a else (origin.x, origin.y)
    bx, by = (b.position.x, b.position.y) if b else (dest.x, dest.y)
    legs = (
        math.dist((origin.x, origin.y), (ax, ay))
        + math.dist((ax, ay), (bx, by)) * 1.2
        + math.dist((bx, by), (dest.x, dest.y))
    )
    return (
        legs / WALK_MPS
        + _floors(scheme, origin.block, origin.floor)
        + _floors(scheme, dest.block, dest.floor)
    )


def noisy(rng: random.Random, seconds: float, sigma: float) -> float:
    """``seconds`` with multiplicative log-normal noise (median unchanged), at least 5 s."""
    if sigma <= 0:
        return max(seconds, 5.0)
    return max(seconds * rng.lognormvariate(0.0, sigma), 5.0)
