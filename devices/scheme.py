"""The scheme file: one scheme's buildings, residents, devices, carers and rota, read from YAML.

``parse_scheme``/``load_scheme`` turn YAML into a validated, frozen ``Scheme``. Every error they
raise is a ``SchemeError`` that names the line of the offending text, so whoever edits the file
can go straight to it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from devices.events import Priority
from devices.registry import Device, Ident
from responders.models import Carer, Shift

Loc = tuple[str | int, ...]
Problem = tuple[Loc, str]

ClientRef = Annotated[str, Field(pattern=r"^[A-Z0-9-]{3,32}$")]
SCHEME_ID = r"^[a-z0-9][a-z0-9-]{1,40}$"  # also the API's path parameter pattern
SchemeId = Annotated[str, Field(pattern=SCHEME_ID)]
Name = Annotated[str, Field(min_length=1, max_length=200)]

_FROZEN = ConfigDict(frozen=True, extra="forbid")
M = TypeVar("M", bound=BaseModel)


class SchemeKind(StrEnum):
    EXTRA_CARE = "extra_care"
    COMMUNITY = "community"
    SUPPORTED_HOUSING = "supported_housing"


class Need(StrEnum):
    """Assessed care need; extra care contracts fund medium and high."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class RiskFlag(StrEnum):
    WANDERING = "wandering"
    FALLS = "falls"
    HIGH_RISK = "high_risk"
    LIVES_ALONE = "lives_alone"
    HEARING_IMPAIRED = "hearing_impaired"
    SIGHT_IMPAIRED = "sight_impaired"
    OXYGEN = "oxygen"
    DOUBLE_HANDED = "double_handed"


class CrossReferenceError(ValueError):
    """A consistency failure, with the path of each offending item relative to the model.

    The loader adds the model's own location and maps each path to a line of the file.
    """

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(f"{_dotted(loc) or '<scheme>'}: {m}" for loc, m in problems))


class Point(BaseModel):
    """A position in metres on the scheme's local grid (x east, y north)."""

    model_config = _FROZEN

    x: FiniteFloat
    y: FiniteFloat

    def distance_to(self, other: Point) -> float:
        return math.dist((self.x, self.y), (other.x, other.y))


class Flat(BaseModel):
    """A flat; ``floor`` 0 is the ground floor and ``position`` is its front door."""

    model_config = _FROZEN

    id: Ident
    number: str = Field(min_length=1, max_length=16)
    block: Ident
    floor: int = Field(ge=0, le=99)
    position: Point
    bedrooms: int = Field(default=1, ge=1, le=6)


class Block(BaseModel):
    """A building; ``position`` is its entrance and flats may omit ``block`` (it is filled in)."""

    model_config = _FROZEN

    id: Ident
    name: Name
    position: Point
    floors: int = Field(ge=1, le=100)
    lift: bool
    flats: tuple[Flat, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _fill_block(cls, data: Any) -> Any:
        # Flats are listed under their block, so repeating the block id on each is optional.
        if not isinstance(data, dict) or not isinstance(data.get("flats"), list):
            return data
        flats = [
            {**f, "block": data.get("id")} if isinstance(f, dict) and "block" not in f else f
            for f in data["flats"]
        ]
        return {**data, "flats": flats}

    @model_validator(mode="after")
    def _check_flats(self) -> Self:
        problems: list[Problem] = []
        for k, flat in enumerate(self.flats):
            if flat.block != self.id:
                problems.append(
                    (
                        ("flats", k, "block"),
                        f"flat {flat.id!r} names block {flat.block!r} but is listed under "
                        f"block {self.id!r}",
                    )
                )
            if flat.floor >= self.floors:
                problems.append(
                    (
                        ("flats", k, "floor"),
                        f"flat {flat.id!r} is on floor {flat.floor} but block {self.id!r} has "
                        f"{self.floors} floors (0 is the ground floor)",
                    )
                )
        if problems:
            raise CrossReferenceError(problems)
        return self


class Site(BaseModel):
    model_config = _FROZEN

    id: Ident
    name: Name
    blocks: tuple[Block, ...]

    # A validator, not min_length: pydantic also reports min_length when an item fails, which
    # would add a bogus "no blocks" error on the wrong line.
    @field_validator("blocks")
    @classmethod
    def _some_blocks(cls, value: tuple[Block, ...]) -> tuple[Block, ...]:
        if not value:
            raise ValueError("a site needs at least one block")
        return value


class BlockLink(BaseModel):
    """A walking route between two block entrances."""

    model_config = _FROZEN

    a: Ident
    b: Ident
    distance_m: FiniteFloat = Field(gt=0)


class Resident(BaseModel):
    """A tenant or care client; ``client_ref`` is the council's pseudonymous reference."""

    model_config = _FROZEN

    client_ref: ClientRef
    display_name: Name
    flat: Ident
    need: Need
    risk_flags: frozenset[RiskFlag] = frozenset()
    care_notes: str = Field(default="", max_length=2000)


class Scheme(BaseModel):
    """One scheme, validated and cross-checked; lookups by id are O(1)."""

    model_config = _FROZEN

    id: SchemeId
    name: Name
    kind: SchemeKind
    timezone: str = "Europe/London"
    sites: tuple[Site, ...]
    links: tuple[BlockLink, ...] = ()
    residents: tuple[Resident, ...] = ()
    devices: tuple[Device, ...] = ()
    carers: tuple[Carer, ...] = ()
    rota: tuple[Shift, ...] = ()
    # Triage policy overrides (see docs/triage.md); validated when the engine loads it.
    triage: dict[str, Any] = Field(default_factory=dict)
    # On-site response target in seconds, per alarm priority; unset ones use gateway defaults.
    targets: dict[Priority, PositiveInt] = Field(default_factory=dict)

    _blocks: dict[str, Block] = PrivateAttr(default_factory=dict)
    _flats: dict[str, Flat] = PrivateAttr(default_factory=dict)
    _residents: dict[str, Resident] = PrivateAttr(default_factory=dict)
    _devices: dict[str, Device] = PrivateAttr(default_factory=dict)
    _zigbee: dict[str, Device] = PrivateAttr(default_factory=dict)
    _carers: dict[str, Carer] = PrivateAttr(default_factory=dict)

    @field_validator("sites")
    @classmethod
    def _some_sites(cls, value: tuple[Site, ...]) -> tuple[Site, ...]:
        if not value:
            raise ValueError("a scheme needs at least one site")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    def model_post_init(self, context: Any, /) -> None:
        # Built once; duplicates are reported by _check_references, which runs after this.
        self._blocks = {b.id: b for b in self.iter_blocks()}
        self._flats = {f.id: f for f in self.iter_flats()}
        self._residents = {r.client_ref: r for r in self.residents}
        self._devices = {d.device_id: d for d in self.devices}
        self._zigbee = {
            d.zigbee_friendly_name: d for d in self.devices if d.zigbee_friendly_name is not None
        }
        self._carers = {c.id: c for c in self.carers}

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        problems = _reference_problems(self)
        if problems:
            raise CrossReferenceError(problems)
        return self

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def iter_blocks(self) -> Iterator[Block]:
        for site in self.sites:
            yield from site.blocks

    def iter_flats(self) -> Iterator[Flat]:
        for block in self.iter_blocks():
            yield from block.flats

    def block(self, block_id: str) -> Block | None:
        return self._blocks.get(block_id)

    def flat(self, flat_id: str) -> Flat | None:
        return self._flats.get(flat_id)

    def resident(self, client_ref: str) -> Resident | None:
        return self._residents.get(client_ref)

    def device(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def device_by_zigbee(self, name: str) -> Device | None:
        return self._zigbee.get(name)

    def carer(self, carer_id: str) -> Carer | None:
        return self._carers.get(carer_id)

    def flat_of(self, device: Device) -> Flat | None:
        """The device's flat, or for a worn device its resident's flat."""
        if device.flat is not None:
            return self.flat(device.flat)
        if device.resident is not None:
            resident = self.resident(device.resident)
            return self.flat(resident.flat) if resident is not None else None
        return None

    def shifts_at(self, when: datetime) -> tuple[Shift, ...]:
        """Rota lines on duty at ``when``; an aware time is converted to the scheme's zone."""
        local = when.astimezone(self.tz) if when.tzinfo is not None else when
        return tuple(s for s in self.rota if s.covers(local))


def _reference_problems(scheme: Scheme) -> list[Problem]:
    problems: list[Problem] = []

    def unique(seen: dict[str, Loc], key: str, loc: Loc, what: str) -> None:
        if key in seen:
            problems.append((loc, f"duplicate {what} {key!r} (first at {_dotted(seen[key])})"))
        else:
            seen[key] = loc

    sites: dict[str, Loc] = {}
    blocks: dict[str, Loc] = {}
    flats: dict[str, Loc] = {}
    for i, site in enumerate(scheme.sites):
        unique(sites, site.id, ("sites", i, "id"), "site id")
        for j, block in enumerate(site.blocks):
            unique(blocks, block.id, ("sites", i, "blocks", j, "id"), "block id")
            for k, flat in enumerate(block.flats):
                unique(flats, flat.id, ("sites", i, "blocks", j, "flats", k, "id"), "flat id")

    pairs: dict[str, Loc] = {}
    for i, link in enumerate(scheme.links):
        for end in ("a", "b"):
            name = getattr(link, end)
            if name not in blocks:
                problems.append((("links", i, end), f"no block {name!r}"))
        if link.a == link.b:
            problems.append((("links", i, "b"), f"a link must join two blocks, not {link.a!r}"))
        pair = " <-> ".join(sorted((link.a, link.b)))
        unique(pairs, pair, ("links", i), "link")

    refs: dict[str, Loc] = {}
    for i, res in enumerate(scheme.residents):
        unique(refs, res.client_ref, ("residents", i, "client_ref"), "client_ref")
        if res.flat not in flats:
            problems.append((("residents", i, "flat"), f"no flat {res.flat!r}"))

    device_ids: dict[str, Loc] = {}
    zigbee: dict[str, Loc] = {}
    for i, dev in enumerate(scheme.devices):
        unique(device_ids, dev.device_id, ("devices", i, "device_id"), "device_id")
        if dev.zigbee_friendly_name is not None:
            loc: Loc = ("devices", i, "zigbee_friendly_name")
            unique(zigbee, dev.zigbee_friendly_name, loc, "zigbee_friendly_name")
        if dev.flat is not None and dev.flat not in flats:
            problems.append((("devices", i, "flat"), f"no flat {dev.flat!r}"))
        if dev.resident is not None:
            res_or_none = scheme.resident(dev.resident)
            if res_or_none is None:
                problems.append((("devices", i, "resident"), f"no resident {dev.resident!r}"))
            elif dev.flat is not None and res_or_none.flat != dev.flat:
                problems.append(
                    (
                        ("devices", i, "flat"),
                        f"device is in flat {dev.flat!r} but resident {dev.resident!r} lives "
                        f"in {res_or_none.flat!r}",
                    )
                )

    carers: dict[str, Loc] = {}
    handsets: dict[str, Loc] = {}
    for i, carer in enumerate(scheme.carers):
        unique(carers, carer.id, ("carers", i, "id"), "carer id")
        if carer.handset_id is not None:
            unique(handsets, carer.handset_id, ("carers", i, "handset_id"), "handset_id")

    for i, shift in enumerate(scheme.rota):
        if shift.carer not in carers:
            problems.append((("rota", i, "carer"), f"no carer {shift.carer!r}"))
        # A zone is where the carer is based, so it must be one of this scheme's sites or blocks.
        if shift.zone is not None and shift.zone not in blocks and shift.zone not in sites:
            problems.append((("rota", i, "zone"), f"zone {shift.zone!r} is not a site or block"))
    return problems


# --- loading -----------------------------------------------------------------------------------

_MAX_SHOWN = 20
# Nodes built again through an alias: a few shift templates use dozens, an alias bomb billions.
_MAX_ALIASED = 100_000
_MAX_DEPTH = 64
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# YAML 1.1 reads 23:00 as the base-60 integer 1380; such scalars are kept as written.
_BASE_60 = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+$")

# libyaml's parser is in the PyYAML wheels; without it every file takes the Python one.
_LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))


class SchemeError(Exception):
    """A scheme file that cannot be used; ``str()`` is ``<source>:<line>: <message>``.

    ``source``, ``line`` and ``message`` describe the first problem in file order; when there are
    several, ``problems`` holds them all and ``str()`` gives one per line.
    """

    def __init__(
        self,
        source: str,
        line: int | None,
        message: str,
        *,
        more: Sequence[tuple[int | None, str]] = (),
    ) -> None:
        self.source = source
        self.line = line
        self.message = message
        self.problems: tuple[tuple[int | None, str], ...] = ((line, message), *more)
        super().__init__(source, line, message)

    def __str__(self) -> str:
        shown = [self._format(line, msg) for line, msg in self.problems[:_MAX_SHOWN]]
        hidden = len(self.problems) - _MAX_SHOWN
        if hidden > 0:
            shown.append(f"{self.source}: ... and {hidden} more")
        return "\n".join(shown)

    def _format(self, line: int | None, message: str) -> str:
        return (
            f"{self.source}:{line}: {message}" if line is not None else f"{self.source}: {message}"
        )


def load_scheme(path: Path | str, cache_dir: Path | None = None) -> Scheme:
    """Read and validate a scheme file.

    With ``cache_dir`` (the gateway's state directory), the YAML parse is skipped when the
    file's bytes are those parsed before by this same parser code: the plain data it gave is
    kept there, keyed by a hash of both, and validated again on every load. A cache that is
    missing, unreadable, corrupt or for other bytes or code is ignored (a full parse), and data
    that no longer validates takes the full parse too, so every error still names its line."""
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SchemeError(source, None, f"cannot read scheme file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SchemeError(source, line, "not valid UTF-8") from None
    if cache_dir is None:
        return parse_scheme(text, source)
    cache = _ParseCache(cache_dir, Path(path), raw)
    cached = cache.get()
    if cached is not None:
        try:
            return Scheme.model_validate(cached)
        except Exception:  # not valid now, or damaged in a way JSON allows: parse the file
            pass
    data, lines = _parse_data(text, source, "scheme")
    scheme = _validate(Scheme, data, lines, source)
    cache.put(data)
    return scheme


def parse_scheme(text: str, source: str = "<string>") -> Scheme:
    """Validate scheme YAML; ``source`` names the text in error messages."""
    return parse_yaml_model(text, Scheme, source, "scheme")[0]


def located_error(source: str, problems: Sequence[Problem], lines: dict[Loc, int]) -> SchemeError:
    """A ``SchemeError`` for problems found after validation, each on its line of the file."""
    found: list[tuple[int | None, str]] = []
    for loc, message in problems:
        line, shown = _locate(loc, lines)
        found.append((line, f"{shown}: {message}" if shown else message))
    found.sort(key=lambda f: (f[0] is None, f[0] or 0))
    (line, message), *more = found
    return SchemeError(source, line, message, more=more)


def parse_yaml_model(
    text: str, model: type[M], source: str = "<string>", what: str = "scheme"
) -> tuple[M, dict[Loc, int]]:
    """Validate YAML into ``model``, every error naming its line; also the line of each path,
    for checks made after validation (``located_error``)."""
    data, lines = _parse_data(text, source, what)
    return _validate(model, data, lines, source), lines


def _parse_data(text: str, source: str, what: str) -> tuple[dict[Any, Any], dict[Loc, int]]:
    """The YAML as plain data, and the line of each path in it."""
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        raise _yaml_error(source, text, exc) from None
    except yaml.YAMLError as exc:
        raise SchemeError(source, None, f"invalid YAML: {exc}") from None
    except RecursionError:
        raise SchemeError(source, None, "YAML is nested too deeply") from None
    if root is None:
        raise SchemeError(source, 1, f"the file is empty; expected a {what} mapping")
    builder = _Builder()
    data = builder.build(root)
    if builder.problems:
        first, *more = sorted(builder.problems, key=lambda p: p[0])
        raise SchemeError(source, first[0], first[1], more=more)
    if not isinstance(data, dict):
        raise SchemeError(source, _line(root), f"the top level must be a mapping of {what} fields")
    return data, builder.lines


def _validate(model: type[M], data: dict[Any, Any], lines: dict[Loc, int], source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _validation_error(source, exc, lines) from None


class _ParseCache:
    """A scheme file's parsed data kept in the state directory (``load_scheme``): one file per
    scheme path, holding the hash its data was parsed from, mode 0600 like anything else there
    with residents' details in it. Only JSON-plain data is kept (YAML dates, bytes or
    non-string keys are parsed every time), so a round trip gives back exactly what was put."""

    def __init__(self, directory: Path, path: Path, raw: bytes) -> None:
        where = hashlib.sha256(str(path.resolve()).encode("utf-8", "surrogateescape"))
        self.file = directory / f".scheme-parse-{where.hexdigest()[:20]}.json"
        self.key = hashlib.sha256(_parser_version() + raw).hexdigest()

    def get(self) -> dict[str, Any] | None:
        try:
            held = json.loads(self.file.read_bytes())
        except (OSError, ValueError):  # absent, unreadable or corrupt: parse the file
            return None
        if not isinstance(held, dict) or held.get("key") != self.key:
            return None
        data = held.get("data")
        return data if isinstance(data, dict) else None

    def put(self, data: dict[Any, Any]) -> None:
        if not _json_plain(data):
            return
        tmp = self.file.with_name(f"{self.file.name}.{os.getpid()}.tmp")
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"key": self.key, "data": data}, out, separators=(",", ":"))
            os.replace(tmp, self.file)
        except OSError:  # a read-only state directory only costs the next start a parse
            with contextlib.suppress(OSError):
                tmp.unlink()


@functools.cache
def _parser_version() -> bytes:
    """What turns a scheme's text into data: this module's code and PyYAML's version."""
    return hashlib.sha256(
        Path(__file__).read_bytes() + f"\0{yaml.__version__}\0{_CACHE_FORMAT}".encode()
    ).digest()


_CACHE_FORMAT = 1


def _json_plain(value: Any) -> bool:
    """True if JSON gives ``value`` back as it is: str-keyed dicts, lists, str, int, float,
    bool and None only (a YAML date, bytes or an int key would come back as something else)."""
    stack = [value]
    while stack:
        v = stack.pop()
        kind = type(v)
        if kind is dict:
            for k, item in v.items():
                if type(k) is not str:
                    return False
                stack.append(item)
        elif kind is list:
            stack.extend(v)
        elif kind not in (str, int, float, bool, type(None)):
            return False
        elif kind is float and not math.isfinite(v):
            return False
    return True


if _LIBYAML:
    from yaml._yaml import CParser

    class _FastComposer(yaml.composer.Composer, CParser, yaml.resolver.Resolver):
        """libyaml's scanner and parser (C) under PyYAML's own composer and resolver: the same
        nodes, tags, styles and line marks as ``yaml.SafeLoader`` makes, four to five times
        faster on a large scheme. The composer stays in Python on purpose: libyaml's own
        (Cython) composer recurses in C and crashes the process on deeply nested input, where
        this one raises RecursionError."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            yaml.composer.Composer.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def _compose(text: str) -> yaml.Node | None:
    """The YAML node tree of ``text``. libyaml parses it when it is there; text it refuses, or
    with characters the pure-Python reader refuses, goes to ``yaml.SafeLoader``, which raises
    the error messages and marks the line finding above is written for."""
    if _LIBYAML and not yaml.reader.Reader.NON_PRINTABLE.search(text):
        loader = _FastComposer(text)
        try:
            node: yaml.Node | None = loader.get_single_node()
            return node
        except (yaml.YAMLError, RecursionError):
            pass  # reported below, by the parser the error messages are made from
        finally:
            loader.dispose()
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml_error(source: str, text: str, exc: yaml.MarkedYAMLError) -> SchemeError:
    problem, context, cmark = exc.problem, exc.context, exc.context_mark
    if problem and context:
        where = f" on line {cmark.line + 1}" if cmark is not None else ""
        if problem.startswith("but "):  # "expected a single document ..., but found another"
            message = f"{context}{where}, {problem}"
        else:
            message = f"{problem} ({context}{where})"
    else:
        message = problem or context or "invalid YAML"
    line, hint = _yaml_error_line(text, exc)
    return SchemeError(source, line, message + hint)


def _yaml_error_line(text: str, exc: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    """The line to blame, which is not always where PyYAML noticed the problem, and a hint."""
    pmark, cmark = exc.problem_mark, exc.context_mark
    # An unclosed quote or a key without ':' is noticed lines later; blame where it began.
    if isinstance(exc, yaml.scanner.ScannerError) and cmark is not None:
        return int(cmark.line) + 1, ""
    if pmark is None:
        return (int(cmark.line) + 1 if cmark is not None else None), ""
    line = int(pmark.line) + 1
    # An unclosed quote swallows the lines up to the next quote and the parser fails there;
    # blame the line where that quoted scalar began.
    before = _token_before(text, int(pmark.index))
    if (
        isinstance(before, yaml.ScalarToken)
        and before.style in ('"', "'")
        and before.start_mark.line < before.end_mark.line
    ):
        return int(before.start_mark.line) + 1, "; is a quote left open on this line?"
    # A flow collection missing its ',' or closing bracket fails on the next line's first item;
    # the previous line is at fault unless it ends ready for more (',' '[' '{').
    if (
        cmark is not None
        and (exc.context or "").startswith("while parsing a flow")
        and cmark.line < pmark.line
    ):
        lines = text.splitlines()
        for back in range(int(pmark.line) - 1, int(cmark.line) - 1, -1):
            content = lines[back].split(" #", 1)[0].strip() if back < len(lines) else ""
            if content and not content.startswith("#"):
                if content.endswith((",", "[", "{")):
                    return line, ""
                return back + 1, "; is a ',' or closing bracket missing on this line?"
    return line, ""


def _token_before(text: str, index: int) -> yaml.Token | None:
    """The last YAML token that starts before character ``index``."""
    last: yaml.Token | None = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= index:
                break
            last = token
    except yaml.YAMLError:
        pass
    return last


class _Builder:
    """Turns a composed YAML node tree into plain data, noting the line of every path."""

    def __init__(self) -> None:
        self.lines: dict[Loc, int] = {}
        self.problems: list[tuple[int, str]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._active: set[int] = set()
        self._built: set[int] = set()
        self._aliased = 0

    def build(self, node: yaml.Node) -> Any:
        self.lines[()] = _line(node)
        try:
            return self._value(node, ())
        except _TooBig as exc:
            self.problems.append((exc.line, "aliases expand to too many YAML nodes"))
            return None

    def _value(self, node: yaml.Node, path: Loc) -> Any:
        if id(node) in self._built:
            self._aliased += 1
            if self._aliased > _MAX_ALIASED:
                raise _TooBig(_line(node))
        self._built.add(id(node))
        if len(path) > _MAX_DEPTH:
            self.problems.append((_line(node), "YAML is nested too deeply"))
            return None
        if id(node) in self._active:
            self.problems.append((_line(node), "an alias refers to its own anchor"))
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node)
        if node.tag not in (_MAP_TAG, _SEQ_TAG):
            self.problems.append((_line(node), f"unsupported YAML tag {node.tag!r}"))
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            items: list[Any] = []
            for i, item in enumerate(node.value):
                self.lines[(*path, i)] = _line(item)
                items.append(self._value(item, (*path, i)))
            return items
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        # Plain (unquoted) style is None from PyYAML's parser, "" from libyaml's.
        if node.tag == _INT_TAG and not node.style and _BASE_60.match(node.value):
            return node.value
        try:
            return self._constructor.construct_object(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or node.start_mark
            self.problems.append((int(mark.line) + 1, exc.problem or "cannot read this value"))
        except (ValueError, OverflowError) as exc:  # e.g. a timestamp such as 2024-13-45
            self.problems.append((_line(node), f"cannot read {node.value!r}: {exc}"))
        return None

    def _mapping(self, node: yaml.MappingNode, path: Loc) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node))
                continue
            key = self._key(key_node)
            if key is _BAD_KEY:
                continue
            line = _line(key_node)
            if key in first_line:
                self.problems.append(
                    (line, f"duplicate key {key!r} (first on line {first_line[key]})")
                )
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            out[key] = self._value(value_node, (*path, key))
        # Keys written out in the mapping win over merged ones, and earlier merges over later.
        for key_node, value_node in merged:
            key = self._key(key_node)
            if key is _BAD_KEY or key in out:
                continue
            self.lines[(*path, key)] = _line(key_node)
            out[key] = self._value(value_node, (*path, key))
        return out

    def _merge_sources(self, node: yaml.Node) -> list[tuple[yaml.Node, yaml.Node]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                self.problems.append((_line(source), "'<<' must merge a mapping or a list of them"))
                continue
            pairs.extend(source.value)
        return pairs

    def _key(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problems.append((_line(node), "mapping keys must be plain values"))
            return _BAD_KEY
        return self._scalar(node)


_BAD_KEY = object()


class _TooBig(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


def _validation_error(source: str, exc: ValidationError, lines: dict[Loc, int]) -> SchemeError:
    found: list[tuple[int | None, str]] = []
    for err in exc.errors():
        loc: Loc = tuple(err["loc"])
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, CrossReferenceError):
            for sub, message in cause.problems:
                line, shown = _locate((*loc, *sub), lines)
                found.append((line, f"{shown}: {message}" if shown else message))
            continue
        line, shown = _locate(loc, lines)
        message = _describe(err)
        found.append((line, f"{shown}: {message}" if shown else message))
    # File order, so the first reported is the first the editor meets.
    found.sort(key=lambda f: (f[0] is None, f[0] or 0))
    (line, message), *more = found
    return SchemeError(source, line, message, more=more)


def _locate(loc: Loc, lines: dict[Loc, int]) -> tuple[int | None, str]:
    """The line of the deepest part of ``loc`` that is in the file, and that part as a path.

    Parts not in the file are union-member tags or a missing field; for the latter this leaves
    the parent mapping, which is where the field belongs.
    """
    path: Loc = ()
    for part in loc:
        if (*path, part) in lines:
            path = (*path, part)
    return lines.get(path), _dotted(path)


def _describe(err: Any) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "missing":
        return f"missing required field {loc[-1]!r}"
    if kind == "extra_forbidden":
        return "unknown field"
    message = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if isinstance(value, str | int | float | bool) or value is None:
        text = repr(value)
        if text not in message:
            message += f" (got {text if len(text) <= 60 else text[:57] + '...'})"
    return message


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
