"""A generated estate for the scale benchmarks: ``schemes`` extra-care schemes of equal size,
each flat with a hub and a resident wearing a pendant, carers on a night rota. All invented."""

from __future__ import annotations

from typing import Any

from devices.scheme import Scheme

FLATS_PER_FLOOR = 10
FLOORS = 10


def scheme_dict(k: int, flats: int, carers: int) -> dict[str, Any]:
    sid = f"est-{k:03d}"
    blocks: list[dict[str, Any]] = []
    residents: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    per_block = FLATS_PER_FLOOR * FLOORS
    for b in range(max(1, -(-flats // per_block))):
        bid = f"B{b}"
        block_flats = []
        for i in range(min(per_block, flats - b * per_block)):
            fid = f"{bid}-{i:03d}"
            floor, col = divmod(i, FLATS_PER_FLOOR)
            block_flats.append(
                {
                    "id": fid,
                    "number": f"{b}{i:03d}",
                    "floor": floor,
                    "position": {"x": 100 * b + 6 * col, "y": 0},
                }
            )
            ref = f"EST-{k:03d}-{b:02d}{i:03d}"
            residents.append(
                {
                    "client_ref": ref,
                    "display_name": f"Resident {fid}",
                    "flat": fid,
                    "need": "medium",
                }
            )
            low = fid.lower()
            devices.append({"device_id": f"{low}-hub", "type": "hub", "flat": fid})
            devices.append({"device_id": f"{low}-pendant", "type": "pendant", "resident": ref})
        blocks.append(
            {
                "id": bid,
                "name": f"Block {b}",
                "position": {"x": 100 * b, "y": 0},
                "floors": FLOORS,
                "lift": True,
                "flats": block_flats,
            }
        )
    return {
        "id": sid,
        "name": f"Estate {k}",
        "kind": "extra_care",
        "timezone": "Europe/London",
        "sites": [{"id": f"s{k}", "name": f"Site {k}", "blocks": blocks}],
        "residents": residents,
        "devices": devices,
        "carers": [
            {"id": f"c{j:03d}", "display_name": f"Carer {j}", "skills": ["first_aid"]}
            for j in range(carers)
        ],
        "rota": [
            {"carer": f"c{j:03d}", "role": "waking_night", "start": "22:00", "end": "08:00"}
            for j in range(carers)
        ],
    }


def estate(devices: int, schemes: int = 50, carers: int = 2000) -> list[Scheme]:
    """``devices`` devices (half hubs, half pendants) over ``schemes`` schemes."""
    flats = max(1, devices // 2 // schemes)
    per = max(1, carers // schemes)
    return [Scheme.model_validate(scheme_dict(k, flats, per)) for k in range(schemes)]
