"""``telecare users ...`` and ``telecare carers issue-tokens``: accounts in the store file
(``TELECARE_AUTH__STORE``), shared with a running gateway, so a change here takes effect on
the gateway's next request. Every change goes on the audit trail."""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from api_models import Role, load_dev_credentials
from devices.scheme import load_scheme
from gateway.auth.audit import AuditTrail
from gateway.auth.store import UserError, UserStore, carer_username
from gateway.config import Settings

users_app = typer.Typer(help="Accounts: add, list, disable, enable, reset.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def _store() -> tuple[UserStore, AuditTrail]:
    settings = Settings()
    store = UserStore(settings.auth.store)
    return store, AuditTrail(store, "cli")


def _operator() -> str:
    """Who ran the command, for the audit trail (the CLI has no session)."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _show_secret(username: str, role: Role, secret: str) -> None:
    console.print(f"[bold]{username}[/bold] ({role.value}): secret [bold]{secret}[/bold]")
    console.print("Shown once: only its argon2 hash is stored.")


@users_app.command("add")
def users_add(
    username: str,
    role: Annotated[Role, typer.Option(help="carer, control_room, manager, commissioner, admin")],
    scheme: Annotated[str | None, typer.Option(help="Carers: their scheme id.")] = None,
    carer: Annotated[str | None, typer.Option(help="Carers: their carer id.")] = None,
) -> None:
    """Create an account with a generated secret (shown once)."""
    store, audit = _store()
    try:
        secret = store.add(username, role, scheme, carer)
    except UserError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    audit.record("users.add", username=_operator(), target=username, detail={"role": role.value})
    _show_secret(username, role, secret)


@users_app.command("list")
def users_list() -> None:
    """Every account: role, scheme and carer id, disabled or not (never a secret)."""
    store, _ = _store()
    table = Table(title="Accounts")
    for col in ("user", "role", "scheme", "carer", "state", "changed (UTC)"):
        table.add_column(col)
    for u in store.users():
        table.add_row(
            u.username,
            u.role.value,
            u.scheme or "",
            u.carer_id or "",
            "disabled" if u.disabled else "enabled",
            u.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


def _set_disabled(username: str, disabled: bool) -> None:
    store, audit = _store()
    try:
        store.set_disabled(username, disabled)
    except UserError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    action = "users.disable" if disabled else "users.enable"
    audit.record(action, username=_operator(), target=username)
    state = "disabled: every session of it has ended" if disabled else "enabled"
    console.print(f"{username} {state}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account; its sessions end at once."""
    _set_disabled(username, True)


@users_app.command("enable")
def users_enable(username: str) -> None:
    """Enable a disabled account."""
    _set_disabled(username, False)


@users_app.command("reset")
def users_reset(username: str) -> None:
    """A new secret for an account (shown once); its sessions end."""
    store, audit = _store()
    try:
        secret = store.reset(username)
    except UserError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    user = store.get(username)
    assert user is not None
    audit.record("users.reset", username=_operator(), target=username)
    _show_secret(username, user.role, secret)


def issue_tokens(
    scheme: Annotated[Path, typer.Option("--scheme", "-s")] = Path(
        "examples/hazelhurst-court.yaml"
    ),
    carer: Annotated[list[str] | None, typer.Option(help="Only these carer ids.")] = None,
) -> None:
    """Sign-in tokens for the carer page: creates each carer's account (or gives it a new
    token); shown once here, only argon2 hashes are stored."""
    s = load_scheme(scheme)
    ids = carer or [c.id for c in s.carers]
    unknown = [c for c in ids if s.carer(c) is None]
    if unknown:
        err.print(f"[red]no such carer in {s.id}[/red]: {', '.join(unknown)}")
        raise typer.Exit(2)
    store, audit = _store()
    table = Table(title=f"Carer sign-in tokens for {s.id} (shown once; hashes in {store.path})")
    table.add_column("carer")
    table.add_column("name")
    table.add_column("token")
    for cid in ids:
        username = carer_username(s.id, cid)
        if store.get(username) is None:
            token = store.add(username, Role.CARER, s.id, cid)
            audit.record(
                "users.add", username=_operator(), target=username, detail={"role": "carer"}
            )
        else:
            token = store.reset(username)
            audit.record("users.reset", username=_operator(), target=username)
        c = s.carer(cid)
        table.add_row(cid, c.display_name if c else "", token)
    console.print(table)


def api_client(base: str, settings: Settings) -> httpx.Client:
    """An HTTP client signed in to the gateway: ``TELECARE_API_USER`` and
    ``TELECARE_API_PASSWORD``, else the development control-room account."""
    user = os.environ.get("TELECARE_API_USER")
    password = os.environ.get("TELECARE_API_PASSWORD")
    if not user or not password:
        creds = load_dev_credentials(settings.auth.dev_credentials_file)
        account = creds.account(Role.CONTROL_ROOM.value) if creds else None
        if account is None:
            err.print(
                "[red]no credentials[/red]: set TELECARE_API_USER and TELECARE_API_PASSWORD"
                f" (no development accounts in {settings.auth.dev_credentials_file})"
            )
            raise typer.Exit(2)
        user, password = account.username, account.password
    client = httpx.Client(base_url=base, timeout=10)
    r = client.post("/api/v1/session", json={"username": user, "password": password})
    if r.status_code != 200:
        client.close()
        err.print(f"[red]sign-in refused[/red] ({r.status_code}): {r.json().get('detail')}")
        raise typer.Exit(1)
    client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return client
