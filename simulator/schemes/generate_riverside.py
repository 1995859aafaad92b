# ruff: noqa: E501  (a data generator: the long lines are the YAML it writes)
"""Generate riverside-estate.yaml (200 flats, 200 hubs) for the power-cut-storm scenario.

Run: .venv/bin/python simulator/schemes/generate_riverside.py
"""

import random
from pathlib import Path

rng = random.Random(200)
L: list[str] = []
w = L.append
w("# Riverside Estate: a generated 200-flat extra-care estate for the power-cut-storm scenario.")
w("# Four blocks of 50 flats (5 floors x 10), one hub per flat (IP hubs on a 15-minute heartbeat),")
w("# a pendant per resident, two waking-night carers per pair of blocks. All names INVENTED.")
w("# Regenerate with the script in docs/scenarios.md; do not edit by hand.")
w("id: riverside-estate")
w("name: Riverside Estate (generated)")
w("kind: extra_care")
w("timezone: Europe/London")
w("targets: {P0: 120, P1: 300, P2: 900, P3: 86400}")
w("sites:")
w("  - id: riverside")
w("    name: Riverside Estate")
w("    blocks:")
flats = []
for b, (bx, by) in zip("CDEF", [(0, 0), (0, 60), (120, 0), (120, 60)], strict=True):
    w(f"      - id: {b}")
    w(f"        name: Block {b}")
    w(f"        position: {{x: {bx}, y: {by}}}")
    w("        floors: 5")
    w("        lift: true")
    w("        flats:")
    for fl in range(5):
        for k in range(10):
            n = fl * 10 + k + 1
            fid = f"{b}-{n:03d}"
            flats.append(fid)
            w(
                f'          - {{id: {fid}, number: "{b}{n}", floor: {fl}, position: {{x: {bx + 6 * (k + 1)}, y: {by}}}}}'
            )
w("links:")
w("  - {a: C, b: D, distance_m: 70}")
w("  - {a: C, b: E, distance_m: 130}")
w("  - {a: E, b: F, distance_m: 70}")
w("residents:")
for i, fid in enumerate(flats):
    need = rng.choice(["high", "medium", "medium", "low"])
    flags = [f for f, p in (("falls", 0.3), ("high_risk", 0.08)) if rng.random() < p]
    w(
        f"  - {{client_ref: RVE-{1000 + i}, display_name: Resident {fid}, flat: {fid}, need: {need}"
        + (f", risk_flags: [{', '.join(flags)}]" if flags else "")
        + "}"
    )
w("devices:")
for i, fid in enumerate(flats):
    low = fid.lower()
    w(
        f"  - {{device_id: rve-{low}-hub, type: hub, flat: {fid}, location: hall, heartbeat_interval_s: 900}}"
    )
    w(f"  - {{device_id: rve-{low}-pendant, type: pendant, resident: RVE-{1000 + i}}}")
w("carers:")
for i in range(1, 5):
    w(
        f"  - {{id: rv-{i:02d}, display_name: Night carer {i}, skills: [first_aid, manual_handling, hoist], handset_id: rv-hs-{i:02d}}}"
    )
w(
    "  - {id: rv-senior, display_name: On-call senior, skills: [first_aid, manual_handling], senior: true}"
)
w("rota:")
for i, z in zip(range(1, 5), "CDEF", strict=True):
    w(
        f'  - {{carer: rv-{i:02d}, role: waking_night, start: "22:00", end: "08:00", days: all, zone: {z}}}'
    )
w('  - {carer: rv-senior, role: on_call, start: "17:00", end: "09:00", days: all}')
Path(__file__).with_name("riverside-estate.yaml").write_text("\n".join(L) + "\n")
