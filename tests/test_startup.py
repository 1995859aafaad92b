"""Production settings checks and how start-up refusals are worded (no secrets, one line each)."""

from __future__ import annotations

import secrets
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.config import DEV_DB_PASSWORD, Settings
from gateway.startup import describe, env_name

TOKEN = "a-control-token-of-32-characters"
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=20)


def production(dsn: str, token: str | None = TOKEN) -> Settings:
    return Settings(environment="production", db={"dsn": dsn}, http={"control_token": token})


@given(
    role=st.one_of(st.just("telecare"), names),
    db=st.one_of(st.just("telecare"), names),
    password=st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        min_size=1,
        max_size=40,
    ).filter(lambda p: p != DEV_DB_PASSWORD),
)
def test_production_accepts_any_role_and_database_with_a_real_password(
    role: str, db: str, password: str
) -> None:
    # The old check refused any DSN containing "telecare", so the default role never started.
    s = production(f"postgresql://{role}:{quote(password, safe='')}@db.internal:5432/{db}")
    assert s.environment == "production"


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://telecare:telecare@127.0.0.1:54330/telecare",
        "postgresql://ops:telecare@db.internal/records",
        "host=db.internal user=ops password=telecare dbname=records",
    ],
)
def test_production_refuses_the_development_password_and_names_the_setting(dsn: str) -> None:
    with pytest.raises(ValidationError) as caught:
        production(dsn)
    (line,) = describe(caught.value)
    assert line.startswith("TELECARE_DB__DSN uses the development database password")


def test_the_development_password_is_fine_outside_production() -> None:
    s = Settings(
        environment="development", db={"dsn": f"postgresql://telecare:{DEV_DB_PASSWORD}@h/t"}
    )
    assert s.environment == "development"


def test_production_without_a_dsn_password_uses_pgpassword(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PGPASSWORD", DEV_DB_PASSWORD)
    with pytest.raises(ValidationError):
        production("postgresql://telecare@db.internal/telecare")
    monkeypatch.setenv("PGPASSWORD", "a-real-one")
    assert production("postgresql://telecare@db.internal/telecare").environment == "production"


def test_refusals_never_quote_a_secret() -> None:
    # pydantic's own text quotes the input of a model-level check (the settings as a dict, cut
    # in the middle), which ends with the control token: the leak an operator reported.
    token = secrets.token_urlsafe(9)  # 12 characters: too short for production
    dsn_secret = secrets.token_urlsafe(16)
    with pytest.raises(ValidationError) as caught:
        production(f"postgresql://telecare:{dsn_secret}@h/telecare", token=token)
    lines = describe(caught.value)
    assert token not in "".join(lines)
    assert lines == ["set TELECARE_HTTP__CONTROL_TOKEN (16+ characters) in production"]

    with pytest.raises(ValidationError) as caught:
        production(f"host=h password={dsn_secret} nonsense")
    (line,) = describe(caught.value)
    assert dsn_secret not in line and dsn_secret[:6] not in line
    assert line.startswith("TELECARE_DB__DSN is not a valid PostgreSQL connection string")


def test_field_errors_name_the_environment_variable() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(http={"port": "eighty"}, schemes=["ok.yaml", 3.5j])  # type: ignore[list-item]
    lines = describe(caught.value)
    assert any(line.startswith("TELECARE_HTTP__PORT: ") for line in lines)
    assert any(line.startswith("TELECARE_SCHEMES[1]: ") for line in lines)
    assert all("eighty" not in line for line in lines)


def test_env_name() -> None:
    assert env_name(("db", "dsn")) == "TELECARE_DB__DSN"
    assert env_name(("schemes", 2)) == "TELECARE_SCHEMES[2]"
