"""``telecare devices provision``: the operator's side of gateway/provision.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from devices.scheme import SchemeError, load_scheme
from devices.topics import TopicLayout
from gateway.provision import (
    DEFAULT_GATEWAY_USER,
    ProvisionError,
    now_utc,
    plan,
    provision,
    publisher_username,
    read_password_file,
    render_acl,
    render_password_file,
    secrets_document,
    write_private,
)

console = Console()
err = Console(stderr=True)

PASSWD_MODE = 0o640  # the broker reads it: give the file to the mosquitto group
ACL_MODE = 0o644  # topic names and ids, no secrets
SECRETS_MODE = 0o600


def provision_command(
    password_file: Annotated[
        Path, typer.Option(help="Mosquitto password_file to write (existing entries are kept).")
    ],
    acl_file: Annotated[Path, typer.Option(help="Mosquitto acl_file to write.")],
    scheme: Annotated[
        list[Path] | None,
        typer.Option("--scheme", "-s", help="Scheme file (repeatable). Default: TELECARE_SCHEMES."),
    ] = None,
    secrets_file: Annotated[
        Path | None,
        typer.Option(help="Write new secrets here (a new file, mode 0600; never overwritten)."),
    ] = None,
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="Print new secrets to standard output.")
    ] = False,
    rotate: Annotated[
        list[str] | None, typer.Option(help="Issue a new secret for this username (repeatable).")
    ] = None,
    rotate_all: Annotated[bool, typer.Option("--rotate-all", help="New secrets for all.")] = False,
    gateway_user: Annotated[
        str | None,
        typer.Option(
            help="The gateway's username. Default: TELECARE_MQTT__USERNAME, else "
            f"{DEFAULT_GATEWAY_USER}."
        ),
    ] = None,
    topic_root: Annotated[
        str | None, typer.Option(help="Default: TELECARE_MQTT__TOPIC_ROOT.")
    ] = None,
    zigbee_root: Annotated[
        str | None, typer.Option(help="Default: TELECARE_MQTT__ZIGBEE_ROOT.")
    ] = None,
) -> None:
    """Write the broker's password file and ACL from the scheme files: one credential each for
    the gateway, every device, every carer's handset and each scheme's Careline operator.

    Credentials already in the password file are kept (devices in the field hold them); new
    ones are created, and shown only with --show-secrets or written to --secrets-file.
    """
    from gateway.config import Settings

    settings = Settings()
    layout = TopicLayout(
        topic_root or settings.mqtt.topic_root, zigbee_root or settings.mqtt.zigbee_root
    )
    user = gateway_user or settings.mqtt.username or DEFAULT_GATEWAY_USER
    if secrets_file is not None and secrets_file.exists():
        err.print(
            f"[red]{secrets_file} exists[/red]: choose a new file (secrets are never overwritten)"
        )
        raise typer.Exit(2)
    try:
        schemes = [load_scheme(p) for p in (scheme or settings.schemes)]
        principals = plan(schemes, layout, gateway_user=user)
        existing = read_password_file(password_file) if password_file.exists() else {}
        outcome, entries = provision(principals, existing, rotate or (), rotate_all)
    except (SchemeError, ProvisionError) as exc:
        err.print(f"[red]cannot provision[/red] {exc}")
        raise typer.Exit(2) from exc
    if outcome.created and secrets_file is None and not show_secrets:
        # Writing hashes whose secrets nobody saw would lock those clients out for good.
        err.print(
            f"[red]{len(outcome.created)} new credentials[/red]: pass --secrets-file PATH "
            "(or --show-secrets) so their secrets reach the operator; nothing written"
        )
        raise typer.Exit(2)
    at = now_utc()
    if secrets_file is not None and outcome.created:
        write_private(secrets_file, secrets_document(outcome.created, at), SECRETS_MODE, True)
    write_private(password_file, render_password_file(entries), PASSWD_MODE)
    write_private(acl_file, render_acl(outcome.principals, at), ACL_MODE)

    kinds = Counter(p.kind.value for p in outcome.principals)
    table = Table(title=f"Broker clients for {', '.join(s.id for s in schemes)}")
    table.add_column("kind")
    table.add_column("clients", justify="right")
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, str(count))
    console.print(table)
    console.print(
        f"{len(outcome.created)} new, {len(outcome.kept)} kept, {len(outcome.removed)} removed"
        + (f" ({', '.join(outcome.removed)})" if outcome.removed else "")
    )
    console.print(
        f"wrote {password_file} and {acl_file}; gateway usernames {user!r} "
        f"(TELECARE_MQTT__USERNAME) and {publisher_username(user)!r} "
        "(TELECARE_MQTT__PUBLISHER_USERNAME)"
    )
    if secrets_file is not None and outcome.created:
        console.print(f"new secrets in {secrets_file} (mode 0600): hand them out, then delete it")
    if show_secrets:
        for n in outcome.created:
            # Plain print, one per line: easy to pipe, and rich would not wrap a secret.
            typer.echo(f"{n.principal.username}\t{n.secret}")
