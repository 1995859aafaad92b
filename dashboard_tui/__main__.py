"""``python -m dashboard_tui --url http://127.0.0.1:8470``: the control-room terminal."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from api_models.credentials import credentials_file, load_dev_credentials
from dashboard_tui.app import ControlRoom
from dashboard_tui.client import GatewayClient


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m dashboard_tui",
        description="Control-room view of a telecare gateway: open alarms, carers, alerts.",
    )
    p.add_argument("--url", default="http://127.0.0.1:8470", help="gateway HTTP API base URL")
    p.add_argument(
        "--tz",
        default="Europe/London",
        help="time zone for displayed times (the gateway sends UTC); default Europe/London",
    )
    p.add_argument(
        "--user",
        default=os.environ.get("TELECARE_API_USER"),
        help="your account (default: $TELECARE_API_USER, else the development control-room"
        " account in var/dev-credentials.json); asks for the password when there is none",
    )
    p.add_argument(
        "--password-file",
        help="file holding the account's secret (default: $TELECARE_API_PASSWORD)",
    )
    p.add_argument(
        "--credentials",
        type=Path,
        default=credentials_file(),
        help="development credentials file (default: $TELECARE_AUTH__DEV_CREDENTIALS_FILE"
        " or var/dev-credentials.json)",
    )
    p.add_argument("--poll", type=float, default=2.0, help="seconds between polls (default 2)")
    p.add_argument("--log", help="write a debug log to this file (the screen is the TUI's)")
    args = p.parse_args(argv)
    try:
        args.zone = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        p.error(f"unknown time zone {args.tz!r}")
    if args.poll <= 0:
        p.error("--poll must be positive")
    args.password = os.environ.get("TELECARE_API_PASSWORD")
    if args.password_file:
        try:
            args.password = Path(args.password_file).read_text().strip()
        except OSError as exc:
            p.error(f"cannot read --password-file: {exc.strerror}")
    if args.user and not args.password:
        # The operator's own account: every action is taken in their name, so never fall
        # back to another account here.
        if not sys.stdin.isatty():
            p.error(f"no password for {args.user}: give --password-file or TELECARE_API_PASSWORD")
        args.password = getpass.getpass(f"Password for {args.user} at {args.url}: ")
    if not args.user or not args.password:
        creds = load_dev_credentials(args.credentials)
        account = creds.account("control_room") if creds else None
        if account is None:
            p.error(
                "no account to sign in with: give --user and --password-file (or"
                " TELECARE_API_USER / TELECARE_API_PASSWORD); a development gateway writes"
                f" its accounts to {args.credentials} on first start"
            )
        args.user, args.password = account.username, account.password
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.DEBUG)
    client = GatewayClient(args.url, username=args.user, password=args.password)
    ControlRoom(client, tz=args.zone, poll_s=args.poll).run()


if __name__ == "__main__":
    main()
