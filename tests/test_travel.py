"""Travel-time estimates (gateway.engine.travel)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.scheme import Point, Scheme, load_scheme, parse_scheme
from gateway.engine.travel import Estimate, Position, TravelParams, estimate

EXAMPLE = load_scheme("examples/hazelhurst-court.yaml")
FLAT_IDS = sorted(f.id for f in EXAMPLE.iter_flats())
P = TravelParams()

# A walk-up house (no lift) and a lifted tower, with no declared link between them.
NO_LIFT = """
id: walkup
name: Walk-up
kind: supported_housing
sites:
  - id: s
    name: S
    blocks:
      - id: house
        name: House
        position: {x: 0, y: 0}
        floors: 5
        lift: false
        flats:
          - {id: h0, number: "0", floor: 0, position: {x: 0, y: 0}}
          - {id: h4, number: "4", floor: 4, position: {x: 0, y: 0}}
      - id: tower
        name: Tower
        position: {x: 30, y: 40}
        floors: 5
        lift: true
        flats:
          - {id: t0, number: "0", floor: 0, position: {x: 30, y: 40}}
          - {id: t1, number: "1", floor: 1, position: {x: 30, y: 40}}
          - {id: t4, number: "4", floor: 4, position: {x: 30, y: 40}}
"""

COMMUNITY = """
id: outreach
name: Outreach
kind: community
sites:
  - id: area
    name: Area
    blocks:
      - id: n1
        name: 1 North Road
        position: {x: 0, y: 0}
        floors: 1
        lift: false
        flats: [{id: n1-1, number: "1", floor: 0, position: {x: 0, y: 0}}]
      - id: s9
        name: 9 South Road
        position: {x: 3000, y: 4000}
        floors: 2
        lift: false
        flats: [{id: s9-1, number: "1", floor: 1, position: {x: 3000, y: 4000}}]
"""


def at(flat: str) -> Position:
    return Position(flat=flat)


def test_same_flat_is_zero() -> None:
    assert estimate(EXAMPLE, at("A-012"), "A-012") == Estimate(0.0, "already at A-012")


def test_same_floor_neighbour_is_a_short_walk() -> None:
    e = estimate(EXAMPLE, at("A-011"), "A-012")
    assert e.seconds == pytest.approx(8 / 1.2)
    assert e.route == "A-011 (floor 1) -> walk 8 m -> A-012 (floor 1)"


def test_same_floor_beats_other_floor_beats_other_block() -> None:
    same_floor = estimate(EXAMPLE, at("A-013"), "A-012").seconds
    other_floor = estimate(EXAMPLE, at("A-023"), "A-012").seconds
    other_block = estimate(EXAMPLE, at("B-042"), "A-012").seconds
    assert same_floor < other_floor < other_block


def test_stairs_for_one_floor_lift_for_many() -> None:
    one = estimate(EXAMPLE, at("A-002"), "A-012")  # stairs 20 s < lift 45 s
    assert one.seconds == pytest.approx(20.0)
    assert "stairs 0->1" in one.route
    walkup = parse_scheme(NO_LIFT)
    # Four floors: the tower's lift (40 + 4 x 5 = 60 s) beats its stairs (80 s) ...
    tower = estimate(walkup, at("t0"), "t4")
    assert tower.seconds == pytest.approx(60.0)
    assert "lift 0->4" in tower.route
    # ... but the house has no lift, so it is stairs all the way.
    house = estimate(walkup, at("h0"), "h4")
    assert house.seconds == pytest.approx(80.0)
    assert "stairs 0->4" in house.route
    assert "lift" not in house.route


def test_vertical_choice_follows_params() -> None:
    slow_lift = TravelParams(lift_wait_s=500.0)
    assert estimate(parse_scheme(NO_LIFT), at("t0"), "t4", slow_lift).seconds == pytest.approx(80)


def test_cross_block_route_uses_the_link() -> None:
    e = estimate(EXAMPLE, at("A-012"), "B-031")
    # 16 m to entrance A, stairs down one floor, the 46 m link, 8 m to B-031 on the ground floor.
    assert e.seconds == pytest.approx((16 + 46 + 8) / 1.2 + 20)
    assert e.route == (
        "A-012 (floor 1) -> walk 16 m -> stairs 1->0 -> entrance A -> link A-B 46 m "
        "-> entrance B -> walk 8 m -> B-031 (floor 0)"
    )
    back = estimate(EXAMPLE, at("B-031"), "A-012")
    assert "link B-A 46 m" in back.route


def test_unlinked_blocks_use_straight_line_times_1_3() -> None:
    e = estimate(parse_scheme(NO_LIFT), at("h0"), "t0")  # entrances 50 m apart, no link
    assert e.seconds == pytest.approx(50 * 1.3 / 1.2)
    assert "house-tower ~65 m (no link" in e.route


def test_multi_hop_via_links() -> None:
    text = (
        NO_LIFT.replace(
            "      - id: tower",
            "      - id: mid\n        name: Mid\n        position: {x: 100, y: 0}\n"
            "        floors: 1\n        lift: false\n      - id: tower",
        )
        + "links:\n  - {a: house, b: mid, distance_m: 10}\n  - {a: tower, b: mid, distance_m: 10}\n"
    )
    e = estimate(parse_scheme(text), at("h0"), "t0")
    assert e.seconds == pytest.approx(20 / 1.2)
    assert "link house-mid 10 m -> link mid-tower 10 m" in e.route


def test_block_check_in_and_points() -> None:
    from_entrance = estimate(EXAMPLE, Position(block="A"), "A-001")
    assert from_entrance.seconds == pytest.approx(8 / 1.2)
    assert from_entrance.route == "entrance A -> walk 8 m -> A-001 (floor 0)"
    # A point inside block A on floor 1 right outside A-013, going to A-012.
    inside = estimate(EXAMPLE, Position(block="A", point=Point(x=24, y=0), floor=1), "A-012")
    assert inside.seconds == pytest.approx(8 / 1.2)
    # A point with no block is outdoors at ground level: straight to B's entrance, then in.
    outdoors = estimate(EXAMPLE, Position(point=Point(x=0, y=30)), "B-031")
    assert outdoors.seconds == pytest.approx((10 + 8) / 1.2)
    assert "outdoors" in outdoors.route
    # The flat wins over the point and the block.
    both = Position(flat="A-011", block="B", point=Point(x=0, y=40))
    assert estimate(EXAMPLE, both, "A-012") == estimate(EXAMPLE, at("A-011"), "A-012")


def test_unknown_position_gives_the_constant_and_ranks_last() -> None:
    unknown = estimate(EXAMPLE, Position(), "A-001")
    assert unknown == Estimate(600.0, "position unknown", known=False)
    assert (
        estimate(EXAMPLE, Position(), "A-001", TravelParams(unknown_position_s=999)).seconds == 999
    )
    for stray in (Position(flat="Z-999"), Position(block="hzc")):
        e = estimate(EXAMPLE, stray, "A-001")
        assert (e.seconds, e.known) == (600.0, False)
        assert e.route.startswith("position unknown (")
    worst_known = max(estimate(EXAMPLE, at(f), "A-030").seconds for f in FLAT_IDS)
    assert worst_known < unknown.seconds
    candidates = {"far": at("B-060"), "none": Position(), "near": at("A-029")}
    ranked = sorted(candidates, key=lambda c: estimate(EXAMPLE, candidates[c], "A-030").seconds)
    assert ranked == ["near", "far", "none"]


def test_unknown_target_flat_raises_key_error() -> None:
    with pytest.raises(KeyError, match="Z-999"):
        estimate(EXAMPLE, at("A-001"), "Z-999")


def test_community_drives() -> None:
    scheme = parse_scheme(COMMUNITY)
    e = estimate(scheme, Position(point=Point(x=0, y=0)), "s9-1")
    assert e.seconds == pytest.approx(5000 * 1.4 / 8.0 + 120)
    assert "drive ~7000 m" in e.route
    from_flat = estimate(scheme, at("n1-1"), "s9-1")
    assert from_flat.seconds == pytest.approx(e.seconds)
    assert estimate(scheme, at("s9-1"), "s9-1").seconds == 0.0
    quick = TravelParams(driving_mps=10.0, road_factor=1.0, park_and_walk_s=0.0)
    assert estimate(scheme, at("n1-1"), "s9-1", quick).seconds == pytest.approx(500.0)


def _is_sane(scheme: Scheme, origin: Position, flat: str) -> bool:
    e = estimate(scheme, origin, flat)
    return e.seconds >= 0 and math.isfinite(e.seconds) and bool(e.route)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FLAT_IDS), st.sampled_from(FLAT_IDS))
def test_symmetric_between_flats(a: str, b: str) -> None:
    there = estimate(EXAMPLE, at(a), b)
    back = estimate(EXAMPLE, at(b), a)
    assert there.seconds == back.seconds
    assert (there.seconds == 0) == (a == b)
    assert _is_sane(EXAMPLE, at(a), b)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(FLAT_IDS),
    st.sampled_from(FLAT_IDS),
    st.sampled_from(FLAT_IDS),
)
def test_triangle_ish(a: str, b: str, c: str) -> None:
    # A detour through a third flat is never quicker than going straight there (stairs and lift
    # costs are subadditive with the default parameters, and walks are straight lines).
    direct = estimate(EXAMPLE, at(a), c).seconds
    via = estimate(EXAMPLE, at(a), b).seconds + estimate(EXAMPLE, at(b), c).seconds
    assert direct <= via + 1e-9


@settings(max_examples=200, deadline=None)
@given(
    st.floats(-500, 500),
    st.floats(-500, 500),
    st.sampled_from([None, "A", "B", "nowhere"]),
    st.integers(0, 2),
    st.sampled_from(FLAT_IDS),
)
def test_points_are_sane(x: float, y: float, block: str | None, floor: int, flat: str) -> None:
    assert _is_sane(EXAMPLE, Position(block=block, point=Point(x=x, y=y), floor=floor), flat)
