"""``python -m dashboard_tui --url http://127.0.0.1:8470``: the control-room terminal."""

from __future__ import annotations

import argparse
import logging
import os
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
        "--token",
        default=os.environ.get("TELECARE_CONTROL_TOKEN"),
        help="control-room token for changes (default: $TELECARE_CONTROL_TOKEN)",
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
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.DEBUG)
    ControlRoom(GatewayClient(args.url, token=args.token), tz=args.zone, poll_s=args.poll).run()


if __name__ == "__main__":
    main()
