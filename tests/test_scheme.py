"""The scheme file: the Hazelhurst Court example, and errors that name the offending line."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from devices.registry import DEFAULT_HEARTBEAT_S, Device, DeviceType
from devices.scheme import (
    Need,
    RiskFlag,
    Scheme,
    SchemeError,
    _Builder,
    _compose,
    _json_plain,
    load_scheme,
    parse_scheme,
)
from responders.models import Shift, ShiftRole, Weekday

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "hazelhurst-court.yaml"
SOURCE = "broken.yaml"


@pytest.fixture(scope="module")
def text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def scheme() -> Scheme:
    return load_scheme(EXAMPLE)


def line_of(text: str, needle: str) -> int:
    """1-based line of the only occurrence of ``needle``."""
    assert text.count(needle) == 1, f"{needle!r} occurs {text.count(needle)} times"
    return text.count("\n", 0, text.index(needle)) + 1


def swap(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def error_for(text: str) -> SchemeError:
    with pytest.raises(SchemeError) as info:
        parse_scheme(text, SOURCE)
    return info.value


def assert_names_line(err: SchemeError, line: int, *fragments: str) -> None:
    assert err.source == SOURCE
    assert err.line == line, str(err)
    assert str(err).startswith(f"{SOURCE}:{line}: {err.message}")
    for fragment in fragments:
        assert fragment in err.message, err.message


# --- the example -------------------------------------------------------------------------------


def test_example_shape(scheme: Scheme) -> None:
    assert scheme.id == "hazelhurst-court"
    assert scheme.kind == "extra_care"
    assert scheme.timezone == "Europe/London"
    blocks = list(scheme.iter_blocks())
    flats = list(scheme.iter_flats())
    assert len(blocks) == 2
    assert len(flats) == 60
    assert Counter(f.bedrooms for f in flats) == {1: 58, 2: 2}
    assert all(scheme.flat(f.id) is f for f in flats)
    assert {f.block for f in flats} == {b.id for b in blocks}
    for block in blocks:
        assert all(0 <= f.floor < block.floors for f in block.flats)
    assert [(link.a, link.b) for link in scheme.links] == [("A", "B")]


def test_example_residents(scheme: Scheme) -> None:
    needs = Counter(r.need for r in scheme.residents)
    assert needs[Need.HIGH] + needs[Need.MEDIUM] == 40
    assert needs[Need.LOW] == 20
    # Every flat is let, once.
    assert sorted(r.flat for r in scheme.residents) == sorted(f.id for f in scheme.iter_flats())
    assert all(r.client_ref.startswith("LBL-EC-") for r in scheme.residents)
    flagged = Counter(flag for r in scheme.residents for flag in r.risk_flags)
    assert flagged[RiskFlag.WANDERING] >= 2
    assert flagged[RiskFlag.FALLS] >= 5
    assert flagged[RiskFlag.DOUBLE_HANDED] >= 2


def test_example_devices_resolve(scheme: Scheme) -> None:
    for device in scheme.devices:
        assert scheme.device(device.device_id) is device
        if device.resident is not None:
            assert scheme.resident(device.resident) is not None
        if device.flat is not None:
            assert scheme.flat(device.flat) is not None
        assert scheme.flat_of(device) is not None, device.device_id
        if device.zigbee_friendly_name is not None:
            assert scheme.device_by_zigbee(device.zigbee_friendly_name) is device


def test_example_device_coverage(scheme: Scheme) -> None:
    kinds = {(scheme.flat_of(d).id, d.type) for d in scheme.devices}  # type: ignore[union-attr]
    for flat in scheme.iter_flats():
        assert (flat.id, DeviceType.HUB) in kinds
        assert (flat.id, DeviceType.SMOKE) in kinds
    worn = {(d.resident, d.type) for d in scheme.devices}
    for res in scheme.residents:
        assert (res.client_ref, DeviceType.PENDANT) in worn
        if RiskFlag.FALLS in res.risk_flags:
            assert (res.client_ref, DeviceType.FALL_DETECTOR) in worn
        if RiskFlag.WANDERING in res.risk_flags:
            doors = [
                d
                for d in scheme.devices
                if d.resident == res.client_ref and d.type is DeviceType.DOOR_CONTACT
            ]
            assert len(doors) == 1
            assert doors[0].location == "front_door"
            assert doors[0].zigbee_friendly_name is not None
            assert doors[0].zigbee_friendly_name.endswith("-front-door")


def test_example_carers_and_rota(scheme: Scheme) -> None:
    night = {s.carer for s in scheme.rota if s.role is ShiftRole.WAKING_NIGHT}
    assert len(night) == 2
    for shift in scheme.rota:
        assert scheme.carer(shift.carer) is not None
        if shift.role is ShiftRole.WAKING_NIGHT:
            assert (shift.start, shift.end) == (time(23), time(7))
            assert shift.days == frozenset(Weekday)
    on_call = {s.carer for s in scheme.rota if s.role is ShiftRole.ON_CALL}
    assert on_call
    assert all(scheme.carer(c).senior for c in on_call)  # type: ignore[union-attr]


def test_example_someone_always_on_duty(scheme: Scheme) -> None:
    start = datetime(2025, 3, 3)  # a Monday
    for minutes in range(0, 7 * 24 * 60, 15):
        assert scheme.shifts_at(start + timedelta(minutes=minutes)), minutes


def test_shifts_at_uses_scheme_time_zone(scheme: Scheme) -> None:
    # 02:30 UTC on Tuesday 1 July is 03:30 BST: the waking nights plus Monday's on-call.
    on = {s.carer for s in scheme.shifts_at(datetime(2025, 7, 1, 2, 30, tzinfo=UTC))}
    night = {s.carer for s in scheme.rota if s.role is ShiftRole.WAKING_NIGHT}
    assert night <= on
    assert {scheme.carer(c).senior for c in on - night} == {True}  # type: ignore[union-attr]
    # 06:30 UTC is 07:30 BST: the night shift has handed over.
    later = {s.carer for s in scheme.shifts_at(datetime(2025, 7, 1, 6, 30, tzinfo=UTC))}
    assert not night & later


def test_lookups_miss_cleanly(scheme: Scheme) -> None:
    assert scheme.device("nope") is None
    assert scheme.device_by_zigbee("nope") is None
    assert scheme.flat("Z-999") is None
    assert scheme.resident("LBL-EC-NONE") is None
    assert scheme.carer("nobody") is None
    assert scheme.block("Z") is None


def test_scheme_is_frozen(scheme: Scheme) -> None:
    with pytest.raises(ValidationError):
        scheme.__setattr__("name", "other")


# --- errors name their line --------------------------------------------------------------------


def test_yaml_syntax_error(text: str) -> None:
    broken = swap(text, "display_name: Desmond Quillan", "display_name: Desmond: Quillan")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "Desmond: Quillan"), "mapping values")


def test_unclosed_flow_mapping_blames_its_line(text: str) -> None:
    flat = '{id: A-004, number: "4", floor: 0, position: {x: 32, y: 0}}'
    broken = swap(text, flat, flat[:-1])
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "{id: A-004,"))


def test_unclosed_flow_sequence_blames_its_line(text: str) -> None:
    broken = swap(text, "risk_flags: [falls, double_handed]", "risk_flags: [falls, double_handed")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "[falls, double_handed\n"), "missing")


@pytest.mark.parametrize("quote", ['"', "'"])
def test_unclosed_quote_blames_its_line(text: str, quote: str) -> None:
    # The open quote runs on to the next quote many lines down, where the parser gives up.
    broken = swap(text, "display_name: Desmond Quillan", f"display_name: {quote}Desmond Quillan")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "Desmond Quillan"), "quote")


def test_key_without_colon_blames_its_line(text: str) -> None:
    broken = swap(text, "    display_name: Winston Okonjo-Hale\n", "    display_name Winston\n")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "display_name Winston"), "':'")


def test_wrong_type(text: str) -> None:
    broken = swap(
        text, '{id: A-004, number: "4", floor: 0,', '{id: A-004, number: "4", floor: "two",'
    )
    err = error_for(broken)
    assert_names_line(err, line_of(broken, '"two"'), "floor", "integer", "'two'")
    assert "\n" not in str(err)  # nothing else is wrong


def test_missing_field_names_parent_mapping(text: str) -> None:
    broken = swap(text, "    flat: A-002\n    need: medium\n", "    flat: A-002\n")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "- client_ref: LBL-EC-2410"), "'need'", "residents[1]")


def test_missing_field_in_block_style_mapping(text: str) -> None:
    broken = swap(
        text,
        "        position: {x: 0, y: 40}\n        floors: 3\n",
        "        position: {x: 0, y: 40}\n",
    )
    err = error_for(broken)
    block_b = line_of(broken, "      - id: B\n")
    assert_names_line(err, block_b, "'floors'")


def test_resident_in_unknown_flat(text: str) -> None:
    broken = swap(text, "flat: A-002\n    need", "flat: A-099\n    need")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "flat: A-099"), "A-099")


def test_duplicate_device_id(text: str) -> None:
    broken = swap(text, "device_id: hzc-a-005-smoke", "device_id: hzc-a-005-hub")
    err = error_for(broken)
    assert_names_line(
        err, line_of(broken, "{device_id: hzc-a-005-hub, type: smoke"), "duplicate", "hzc-a-005-hub"
    )


def test_device_for_unknown_resident(text: str) -> None:
    broken = swap(
        text, "type: pendant, resident: LBL-EC-2410}", "type: pendant, resident: LBL-EC-0000}"
    )
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "LBL-EC-0000"), "LBL-EC-0000")


def test_duplicate_zigbee_name(text: str) -> None:
    broken = swap(
        text,
        "zigbee_friendly_name: hzc-a-010-front-door",
        "zigbee_friendly_name: hzc-a-001-front-door",
    )
    err = error_for(broken)
    second = broken.index(
        "zigbee_friendly_name: hzc-a-001-front-door", broken.index("hzc-a-010-door")
    )
    assert_names_line(err, broken.count("\n", 0, second) + 1, "duplicate")


def test_shift_for_unknown_carer(text: str) -> None:
    broken = swap(text, "  - carer: cw-09\n", "  - carer: cw-99\n")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "carer: cw-99"), "cw-99")


def test_duplicate_yaml_key(text: str) -> None:
    broken = swap(text, "    flat: A-002\n", "    flat: A-002\n    flat: A-003  # again\n")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "# again"), "duplicate key")


def test_unknown_field(text: str) -> None:
    broken = swap(
        text,
        "        lift: true\n        flats:\n          - {id: A-001",
        "        lifts: true\n        lift: true\n        flats:\n          - {id: A-001",
    )
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "lifts: true"), "unknown field")


def test_several_errors_in_file_order(text: str) -> None:
    broken = swap(text, "device_id: hzc-a-005-smoke", "device_id: hzc-a-005-hub")
    broken = swap(broken, "flat: A-002\n    need", "flat: A-099\n    need")
    err = error_for(broken)
    lines = str(err).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{SOURCE}:{line_of(broken, 'flat: A-099')}: ")
    assert lines[1].startswith(
        f"{SOURCE}:{line_of(broken, '{device_id: hzc-a-005-hub, type: smoke')}: "
    )
    found = [line or 0 for line, _ in err.problems]
    assert found == sorted(found)


def test_floor_outside_block(text: str) -> None:
    broken = swap(text, '{id: A-004, number: "4", floor: 0,', '{id: A-004, number: "4", floor: 7,')
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "floor: 7"), "floor 7")


def test_unquoted_time_is_read_as_written(text: str) -> None:
    # YAML 1.1 would make 23:00 the number 1380; the loader keeps it as the time it looks like.
    broken = text.replace('start: "23:00"', "start: 23:00")
    scheme = parse_scheme(broken, SOURCE)
    assert {s.start for s in scheme.rota if s.role is ShiftRole.WAKING_NIGHT} == {time(23)}


def test_unsafe_tag_is_refused(text: str) -> None:
    broken = swap(text, "    flat: A-002\n", "    flat: !!python/name:os.system A-002\n")
    err = error_for(broken)
    assert_names_line(err, line_of(broken, "!!python"))


def test_alias_bomb_is_refused() -> None:
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i, name in enumerate("bcdefg"):
        prev = "abcdefg"[i]
        rows.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    err = error_for("\n".join(rows) + "\n")
    assert err.line is not None
    assert "too many" in err.message


def test_empty_and_non_mapping() -> None:
    assert error_for("").line == 1
    assert error_for("# nothing\n").line == 1
    assert_names_line(error_for("\n\n- a\n- b\n"), 3, "mapping")


def test_load_scheme_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(SchemeError) as info:
        load_scheme(path)
    assert info.value.source == str(path)
    assert info.value.line is None
    assert str(info.value).startswith(f"{path}: ")


def test_load_scheme_names_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hzc.yaml"
    path.write_text(swap(text, "kind: extra_care", "kind: care_home"), encoding="utf-8")
    with pytest.raises(SchemeError) as info:
        load_scheme(path)
    assert str(info.value).startswith(f"{path}:{line_of(text, 'kind: extra_care')}: kind")


def test_merge_keys_and_aliases() -> None:
    scheme = parse_scheme(
        """
id: tiny
name: Tiny
kind: supported_housing
sites:
  - id: s
    name: S
    blocks:
      - id: house
        name: House
        position: {x: 0, y: 0}
        floors: 2
        lift: false
        flats:
          - {id: f1, number: "1", floor: 0, position: &door {x: 1, y: 2}}
          - {id: f2, number: "2", floor: 1, position: *door}
carers:
  - {id: c1, display_name: Sam}
rota:
  - &night {carer: c1, role: sleep_in, start: "22:00", end: "08:00", days: weekdays}
  - <<: *night
    days: [saturday, sunday]
    role: waking_night
"""
    )
    assert scheme.flat("f2").position == scheme.flat("f1").position  # type: ignore[union-attr]
    assert scheme.rota[1].start == time(22)
    assert scheme.rota[1].role is ShiftRole.WAKING_NIGHT
    assert scheme.rota[1].days == {Weekday.SATURDAY, Weekday.SUNDAY}


# --- the two parsers ---------------------------------------------------------------------------

EXAMPLES = sorted((EXAMPLE.parent).glob("*.yaml"))
TRICKY = [
    "a: &x {b: 1, c: [2, 3]}\nd: *x\ne:\n  <<: *x\n  b: 4\n",
    "start: 23:00\nq: '23:00'\nn: -1:30\nf: 1.5e3\nt: 2024-05-06\nu: 2024-05-06T01:02:03Z\n",
    "yes: no\noff: ON\nnull_: ~\nempty:\nhex: 0x1F\noct: 0o17\nold_oct: 017\ninf: .inf\n",
    "block: |\n  two\n  lines\nfolded: >\n  one\n  line\nplain: multi\n  word\n",
    "? complex\n: key\nlist:\n- - nested\n  - more\n- {}\n- []\n",
    "\"quoted key\": \"\\u00e9\\t\\x41\"\nsingle: 'it''s'\n# comment\nend: 1 # trailing\n",
    "%YAML 1.1\n---\nafter: directive\n...\n",
    "bad: !!python/name:os.system x\nint_key: {1: a, 2: b}\ndup: 1\ndup: 2\n",
]


def _built(root: Any) -> tuple[Any, dict[Any, int], list[tuple[int, str]]]:
    builder = _Builder()
    data = builder.build(root)
    return data, builder.lines, sorted(builder.problems)


@pytest.mark.parametrize(
    "text",
    [p.read_text(encoding="utf-8") for p in EXAMPLES] + TRICKY,
    ids=[p.name for p in EXAMPLES] + [f"tricky-{i}" for i in range(len(TRICKY))],
)
def test_libyaml_path_builds_what_the_python_parser_builds(text: str) -> None:
    # Schemes are parsed by libyaml's parser under PyYAML's composer (devices/scheme.py
    # ``_compose``); the values, lines and problems must be those of the pure-Python loader.
    fast = _compose(text)
    assert fast is not None
    assert type(fast.start_mark) is yaml._yaml.Mark  # it did take the libyaml path
    assert _built(fast) == _built(yaml.compose(text, Loader=yaml.SafeLoader))


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    # libyaml's own composer recurses in C and kills the process at this depth.
    err = error_for("a: " + "[" * 100_000 + "]" * 100_000 + "\n")
    assert "nested too deeply" in err.message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("id: x\nname: ok\nbad: \x07bell\n", None, "special characters are not allowed"),
        ("id: x\n---\nname: y\n", 2, "expected a single document"),
        ("id: x\nname: [a, b\nkind: c\n", 2, "closing bracket missing"),
        ("id: x\nname: \tb: c\n", 2, "cannot start any token"),
    ],
)
def test_errors_the_libyaml_parser_meets_read_as_before(
    text: str, line: int | None, fragment: str
) -> None:
    # What libyaml refuses is parsed again by PyYAML's own parser, for its messages and lines.
    err = error_for(text)
    assert err.line == line, str(err)
    assert fragment in str(err)


# --- the parse kept in the state directory ------------------------------------------------------


def _cache_file(state: Path) -> Path:
    [held] = state.glob(".scheme-parse-*.json")
    return held


def test_a_cached_parse_gives_the_same_scheme_and_is_private(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hzc.yaml"
    path.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    first = load_scheme(path, cache_dir=state)
    held = _cache_file(state)
    assert held.stat().st_mode & 0o777 == 0o600  # residents' details
    assert load_scheme(path, cache_dir=state) == first == load_scheme(path)
    # The second load took the kept data: changing that data (same key) shows through.
    body = json.loads(held.read_text())
    body["data"]["name"] = "Renamed From The Cache"
    held.write_text(json.dumps(body))
    assert load_scheme(path, cache_dir=state).name == "Renamed From The Cache"


def test_an_edited_file_is_parsed_again(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hzc.yaml"
    path.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    load_scheme(path, cache_dir=state)
    path.write_text(swap(text, "\nname: Hazelhurst Court\n", "\nname: Hazelhurst Court Two\n"))
    assert load_scheme(path, cache_dir=state).name == "Hazelhurst Court Two"


@pytest.mark.parametrize(
    "damage",
    [
        lambda body: b"\x00\xff not json",
        lambda body: body[: len(body) // 2],
        lambda body: b"[]",
        lambda body: json.dumps({**json.loads(body), "data": [1, 2]}).encode(),
        # Data that no longer validates (as after a validator change): parsed again.
        lambda body: json.dumps(
            {**json.loads(body), "data": {**json.loads(body)["data"], "kind": 7}}
        ).encode(),
    ],
    ids=["garbage", "truncated", "not-a-mapping", "data-not-a-mapping", "invalid-data"],
)
def test_a_damaged_cache_is_never_trusted(
    tmp_path: Path, text: str, damage: Callable[[bytes], bytes]
) -> None:
    path = tmp_path / "hzc.yaml"
    path.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    expected = load_scheme(path, cache_dir=state)
    held = _cache_file(state)
    held.write_bytes(damage(held.read_bytes()))
    assert load_scheme(path, cache_dir=state) == expected
    assert json.loads(held.read_text())["data"]["name"] == expected.name  # written again


def test_bad_files_name_their_line_with_a_cache_too(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hzc.yaml"
    path.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    load_scheme(path, cache_dir=state)
    broken = swap(text, "kind: extra_care", "kind: care_home")
    path.write_text(broken, encoding="utf-8")
    for _ in range(2):  # nothing is kept for a file that does not validate
        with pytest.raises(SchemeError) as info:
            load_scheme(path, cache_dir=state)
        assert info.value.line == line_of(broken, "kind: care_home")


def test_only_data_json_gives_back_unchanged_is_kept() -> None:
    # An unquoted YAML date would come back from JSON as a string, an int key as a string.
    assert _json_plain({"a": [1, 2.5, None, True, "x", {"b": {}}]})
    for value in ({1: "a"}, {"a": date(2024, 5, 6)}, [b"x"], {"a": float("nan")}, ("t",)):
        assert not _json_plain(value)


def test_a_read_only_state_directory_still_loads(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hzc.yaml"
    path.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o500)
    try:
        assert load_scheme(path, cache_dir=state) == load_scheme(path)
    finally:
        state.chmod(0o700)


# --- devices -----------------------------------------------------------------------------------


def test_heartbeat_defaults() -> None:
    assert DEFAULT_HEARTBEAT_S[DeviceType.HUB] == 60
    assert DEFAULT_HEARTBEAT_S[DeviceType.PENDANT] == 25 * 3600
    assert set(DEFAULT_HEARTBEAT_S) == set(DeviceType)
    hub = Device(device_id="h1", type=DeviceType.HUB)
    assert hub.expected_heartbeat_s == 60
    door = Device(device_id="d1", type=DeviceType.DOOR_CONTACT, heartbeat_interval_s=3600)
    assert door.expected_heartbeat_s == 3600


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "slash/no"])
def test_device_id_pattern(bad: str) -> None:
    with pytest.raises(ValidationError):
        Device(device_id=bad, type=DeviceType.PENDANT)


def test_zigbee_name_cannot_hold_wildcards() -> None:
    for bad in ("door/#", "a+b", "/door", "door/"):
        with pytest.raises(ValidationError):
            Device(device_id="d", type=DeviceType.DOOR_CONTACT, zigbee_friendly_name=bad)


# --- Shift.covers ------------------------------------------------------------------------------

MON = datetime(2025, 3, 3)  # a Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """``day`` 0 is Monday 3 March 2025."""
    return MON + timedelta(days=day, hours=hour, minutes=minute)


def shift(start: str, end: str, days: object = "all") -> Shift:
    return Shift.model_validate(
        {"carer": "c1", "role": "waking_night", "start": start, "end": end, "days": days}
    )


def test_day_shift() -> None:
    s = shift("07:00", "15:00", "weekdays")
    assert not s.crosses_midnight
    assert s.covers(at(0, 7))
    assert s.covers(at(0, 14, 59))
    assert not s.covers(at(0, 15))
    assert not s.covers(at(0, 6, 59))
    assert not s.covers(at(5, 10))  # Saturday


def test_night_shift_crosses_midnight() -> None:
    s = shift("23:00", "07:00", ["monday"])
    assert s.crosses_midnight
    assert s.duration == timedelta(hours=8)
    assert s.covers(at(0, 23))
    assert s.covers(at(1, 0))
    assert s.covers(at(1, 3))  # Monday's night shift covers Tuesday 03:00
    assert s.covers(at(1, 6, 59))
    assert not s.covers(at(1, 7))
    assert not s.covers(at(0, 3))  # that hour belongs to Sunday's shift
    assert not s.covers(at(1, 23))  # no Tuesday shift
    assert not s.covers(at(0, 22, 59))


def test_night_shift_on_sunday_runs_into_monday() -> None:
    s = shift("23:00", "07:00", ["sun"])
    assert s.covers(at(7, 2))  # Monday 10 March, 02:00
    assert not s.covers(at(6, 2))  # Sunday 02:00


def test_twenty_four_hour_shift() -> None:
    s = shift("09:00", "09:00", ["saturday"])
    assert s.duration == timedelta(hours=24)
    assert s.covers(at(5, 9))
    assert s.covers(at(6, 8, 59))
    assert not s.covers(at(6, 9))
    assert not s.covers(at(5, 8, 59))


def test_aware_datetime_uses_its_wall_clock() -> None:
    s = shift("23:00", "07:00", ["monday"])
    assert s.covers(datetime(2025, 3, 4, 3, 0, tzinfo=UTC))


def test_shift_parsing() -> None:
    assert shift("23:00", "07:00").days == frozenset(Weekday)
    assert shift("23:00", "07:00", "weekends").days == {Weekday.SATURDAY, Weekday.SUNDAY}
    assert shift("23:00", "07:00", ["Mon", "TUESDAY"]).days == {Weekday.MONDAY, Weekday.TUESDAY}
    for start in ("25:00", "9am", "", 1380):
        with pytest.raises(ValidationError):
            shift(start, "07:00")  # type: ignore[arg-type]
    for days in (["fryday"], []):
        with pytest.raises(ValidationError):
            shift("23:00", "07:00", days)


@given(
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    days=st.frozensets(st.sampled_from(list(Weekday)), min_size=1),
    when=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31)),
)
def test_covers_matches_shift_occurrences(
    start: time, end: time, days: frozenset[Weekday], when: datetime
) -> None:
    s = Shift(carer="c1", role=ShiftRole.DAY, start=start, end=end, days=days)
    # A shift occurs once on each of its days, from its start for its duration.
    expected = False
    for back in (0, 1):
        day = (when - timedelta(days=back)).date()
        begin = datetime.combine(day, start)
        if Weekday.of(begin) in days and begin <= when < begin + s.duration:
            expected = True
    assert s.covers(when) == expected
