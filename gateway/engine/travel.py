"""Travel-time estimates from a carer's last known position to a resident's flat.

Pure and deterministic: no I/O, no clocks, nothing cached between calls, so an edited scheme file
is honoured at once. The routing core calls ``estimate`` for every candidate carer on every alarm
and shows ``Estimate.route`` to the control room, so every figure is built from a few legs a scheme
manager can check by hand:

* Extra care and supported housing (walking). Within a block: the straight distance along the
  walkways between the two front doors at ``walking_mps``, plus the floors climbed by stairs or, if
  the block has one and it is quicker, by lift (``lift_wait_s`` + ``lift_s_per_floor`` a floor).
  Between blocks: out to the block entrance (ground floor), along the cheapest chain of block links
  (a declared ``BlockLink`` where there is one, otherwise the straight line between entrances x1.3),
  then in to the flat.
* Community (driving). The straight line x ``road_factor`` at ``driving_mps``, plus
  ``park_and_walk_s``.

A carer with no usable position gets ``unknown_position_s`` and ``known=False``: still routable,
but the caller should rank them after every carer whose position is known.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from devices.scheme import Block, Flat, Point, Scheme, SchemeKind

# An undeclared walk between two block entrances is longer than the straight line.
UNLINKED_FACTOR = 1.3


@dataclass(frozen=True, slots=True)
class Position:
    """Where a carer was last known to be.

    Read in order: ``flat``; else ``point`` (inside ``block`` on ``floor`` when ``block`` names a
    block, otherwise outdoors at ground level); else ``block`` alone (its entrance, ground floor).
    """

    flat: str | None = None
    block: str | None = None
    point: Point | None = None
    floor: int = 0


@dataclass(frozen=True, slots=True)
class TravelParams:
    walking_mps: float = 1.2
    stairs_s_per_floor: float = 20.0
    lift_wait_s: float = 40.0
    lift_s_per_floor: float = 5.0
    driving_mps: float = 8.0  # ~29 km/h urban average
    road_factor: float = 1.4  # straight line -> road distance
    park_and_walk_s: float = 120.0
    unknown_position_s: float = 600.0  # no known position: ranks them last but routable


@dataclass(frozen=True, slots=True)
class Estimate:
    seconds: float
    route: str  # short human explanation of the legs
    known: bool = True  # False when the origin could not be placed (seconds is the fallback)


_DEFAULT_PARAMS = TravelParams()


@dataclass(frozen=True, slots=True)
class _Origin:
    """A resolved origin: a point, the block it is inside (None = outdoors) and a floor."""

    label: str
    point: Point
    block: Block | None
    floor: int
    flat: str | None = None


def estimate(
    scheme: Scheme, origin: Position, flat_id: str, params: TravelParams = _DEFAULT_PARAMS
) -> Estimate:
    """Estimated seconds for a carer at ``origin`` to reach the front door of ``flat_id``.

    Raises ``KeyError`` if the scheme has no flat ``flat_id``.
    """
    flats, blocks = _tables(scheme)
    target = flats.get(flat_id)
    if target is None:
        raise KeyError(f"flat {flat_id!r} is not in scheme {scheme.id!r}")
    target_block = blocks.get(target.block)
    if target_block is None:  # the scheme validator guarantees this never happens
        raise KeyError(f"flat {flat_id!r} names block {target.block!r}, not in {scheme.id!r}")

    start, why = _resolve(flats, blocks, origin)
    if start is None:
        return Estimate(params.unknown_position_s, f"position unknown{why}", known=False)
    if start.flat == target.id:
        return Estimate(0.0, f"already at {target.id}")
    if scheme.kind == SchemeKind.COMMUNITY:
        return _drive(start, target, params)
    return _walk(scheme, start, target, target_block, params)


# --- origin ------------------------------------------------------------------------------------


# id(scheme) -> (scheme, its flats by id, its blocks by id). ``Scheme.flat``/``block`` read a
# pydantic private attribute (a few microseconds each), and routing estimates every carer.
_TABLES: dict[int, tuple[Scheme, dict[str, Flat], dict[str, Block]]] = {}


def _tables(scheme: Scheme) -> tuple[dict[str, Flat], dict[str, Block]]:
    hit = _TABLES.get(id(scheme))
    if hit is None or hit[0] is not scheme:
        if len(_TABLES) > 256:  # schemes are few and long-lived; tests make many
            _TABLES.clear()
        hit = (
            scheme,
            {f.id: f for f in scheme.iter_flats()},
            {b.id: b for b in scheme.iter_blocks()},
        )
        _TABLES[id(scheme)] = hit
    return hit[1], hit[2]


def _resolve(
    flats: dict[str, Flat], blocks: dict[str, Block], pos: Position
) -> tuple[_Origin | None, str]:
    """The origin, or None and a reason (" (...)", or "" when nothing was reported)."""
    notes: list[str] = []
    if pos.flat is not None:
        flat = flats.get(pos.flat)
        if flat is not None:
            return (
                _Origin(flat.id, flat.position, blocks.get(flat.block), flat.floor, flat.id),
                "",
            )
        notes.append(f"flat {pos.flat!r} not in scheme")
    block = blocks.get(pos.block) if pos.block is not None else None
    if pos.point is not None:
        p = pos.point
        if block is not None:
            label = f"({_m(p.x)}, {_m(p.y)}) in {block.id} (floor {pos.floor})"
            return _Origin(label, p, block, pos.floor), ""
        return _Origin(f"({_m(p.x)}, {_m(p.y)}) outdoors", p, None, 0), ""
    if block is not None:
        return _Origin(f"entrance {block.id}", block.position, block, 0), ""
    if pos.block is not None:
        notes.append(f"zone {pos.block!r} is not a block")
    return None, f" ({'; '.join(notes)})" if notes else ""


# --- community: driving ------------------------------------------------------------------------


def _drive(start: _Origin, target: Flat, params: TravelParams) -> Estimate:
    straight = start.point.distance_to(target.position)
    road = straight * params.road_factor
    seconds = math.fsum((road / params.driving_mps, params.park_and_walk_s))
    route = (
        f"{start.label} -> drive ~{_m(road)} m (straight {_m(straight)} m x{params.road_factor:g})"
        f" -> park and walk {params.park_and_walk_s:g} s -> {target.id}"
    )
    return Estimate(seconds, route)


# --- extra care / supported housing: walking ---------------------------------------------------


def _walk(
    scheme: Scheme, start: _Origin, target: Flat, target_block: Block, params: TravelParams
) -> Estimate:
    legs: list[float] = []
    words: list[str] = [
        start.label if start.flat is None else f"{start.label} (floor {start.floor})"
    ]

    def horizontal(a: Point, b: Point) -> None:
        d = a.distance_to(b)
        if d > 0:
            legs.append(d / params.walking_mps)
            words.append(f"walk {_m(d)} m")

    def vertical(block: Block, frm: int, to: int) -> None:
        if frm == to:
            return
        seconds, how = _vertical(block, abs(frm - to), params)
        legs.append(seconds)
        words.append(f"{how} {frm}->{to}")

    if start.block is not None and start.block.id == target_block.id:
        horizontal(start.point, target.position)
        vertical(target_block, start.floor, target.floor)
    else:
        if start.block is not None:
            horizontal(start.point, start.block.position)
            vertical(start.block, start.floor, 0)
            if words[-1] != f"entrance {start.block.id}":  # unless it started there
                words.append(f"entrance {start.block.id}")
            seconds, hops = _between(scheme, start.block, target_block, params)
            legs.append(seconds)
            words.extend(hops)
        else:  # outdoors: straight to the target block's entrance
            d = start.point.distance_to(target_block.position)
            legs.append(d / params.walking_mps)
            words.append(f"walk {_m(d)} m outdoors")
        words.append(f"entrance {target_block.id}")
        horizontal(target_block.position, target.position)
        vertical(target_block, 0, target.floor)
    words.append(f"{target.id} (floor {target.floor})")
    # fsum is exactly rounded, so the total does not depend on the order of the legs.
    return Estimate(math.fsum(legs), " -> ".join(words))


def _vertical(block: Block, floors: int, params: TravelParams) -> tuple[float, str]:
    stairs = floors * params.stairs_s_per_floor
    if block.lift:
        lift = params.lift_wait_s + floors * params.lift_s_per_floor
        if lift < stairs:
            return lift, "lift"
    return stairs, "stairs"


# id(scheme) -> (scheme, {(from block, to block, params): (seconds, hops)})
_ROUTES: dict[
    int, tuple[Scheme, dict[tuple[str, str, TravelParams], tuple[float, tuple[str, ...]]]]
] = {}


def _between(
    scheme: Scheme, a: Block, b: Block, params: TravelParams
) -> tuple[float, tuple[str, ...]]:
    """As ``_route``, remembered per scheme: routing estimates every carer for every offer,
    and a Dijkstra over the blocks each time grew with the scheme (schemes are immutable)."""
    hit = _ROUTES.get(id(scheme))
    if hit is None or hit[0] is not scheme:
        if len(_ROUTES) > 256:  # schemes are few and long-lived; tests make many
            _ROUTES.clear()
        hit = (scheme, {})
        _ROUTES[id(scheme)] = hit
    key = (a.id, b.id, params)
    found = hit[1].get(key)
    if found is None:
        seconds, hops = _route(scheme, a, b, params)
        found = hit[1][key] = (seconds, tuple(hops))
    return found


def _route(scheme: Scheme, a: Block, b: Block, params: TravelParams) -> tuple[float, list[str]]:
    """Walking seconds between two block entrances and the hops taken (Dijkstra over blocks).

    Each pair of blocks is joined by its declared link if any (the shortest, if several), else by
    the straight line between entrances x1.3. Blocks are few, so the dense O(B^2) form is used.
    """
    blocks = {blk.id: blk for blk in scheme.iter_blocks()}
    declared: dict[frozenset[str], float] = {}
    for link in scheme.links:
        if link.a in blocks and link.b in blocks and link.a != link.b:
            key = frozenset((link.a, link.b))
            declared[key] = min(declared.get(key, math.inf), link.distance_m)

    def edge(u: str, v: str) -> tuple[float, bool]:
        d = declared.get(frozenset((u, v)))
        if d is not None:
            return d, True
        return blocks[u].position.distance_to(blocks[v].position) * UNLINKED_FACTOR, False

    dist: dict[str, float] = {a.id: 0.0}
    prev: dict[str, str] = {}
    done: set[str] = set()
    order = list(blocks)  # scheme order, so ties break the same way every time
    while True:
        u = min(
            (k for k in order if k in dist and k not in done),
            key=lambda k: dist[k],
            default=None,
        )
        if u is None or u == b.id:
            break
        done.add(u)
        for v in order:
            if v in done or v == u:
                continue
            alt = dist[u] + edge(u, v)[0]
            if alt < dist.get(v, math.inf):
                dist[v] = alt
                prev[v] = u

    path = [b.id]
    while path[-1] != a.id:
        path.append(prev[path[-1]])
    path.reverse()
    metres: list[float] = []
    hops: list[str] = []
    for u, v in itertools.pairwise(path):
        d, is_link = edge(u, v)
        metres.append(d)
        if is_link:
            hops.append(f"link {u}-{v} {_m(d)} m")
        else:
            hops.append(f"{u}-{v} ~{_m(d)} m (no link: straight line x{UNLINKED_FACTOR:g})")
    return math.fsum(metres) / params.walking_mps, hops


def _m(metres: float) -> str:
    return f"{metres:.0f}"
