"""`ckaudit server status|stop`: the user's warm build servers (see ckaudit/worker/warmclient.py).

`status` lists every server running for this user (one per interpreter), `stop` asks each to exit. Both exit
0; neither starts a server (the hook, `check`, `diagnose`, `scan` and `blame` do, after a cold run).
"""

from __future__ import annotations

import argparse
import json
import time

from ckaudit.worker import ask, server_dir, servers, stop_all, unavailable


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("server", help="show or stop the warm build server (torch kept imported)")
    parser.add_argument(
        "action", choices=("status", "stop"), help="status: list running servers; stop: end them"
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "stop":
        stopped = stop_all()
        if args.format == "json":
            print(json.dumps({"stopped": stopped}))
        else:
            print(
                f"stopped {len(stopped)} build server(s)"
                + (f": pid {', '.join(map(str, stopped))}" if stopped else "")
            )
        return 0
    found = [answer for path in servers() if (answer := ask(path, "status")) is not None]
    if args.format == "json":
        print(json.dumps({"servers": found, "disabled": unavailable()}, indent=2))
        return 0
    why = unavailable()
    if why:
        print(f"the build server is not used: {why}")
    if not found:
        print(f"no build server is running (directory: {server_dir(create=False)})")
    for status in found:
        up = time.time() - float(status.get("started", time.time()))
        print(
            f"pid {status.get('pid')}: {status.get('python')}, up {up:.0f} s, "
            f"{status.get('sessions')} session(s) served, {status.get('running')} running, "
            f"{status.get('preloaded')} module(s) preloaded, "
            f"exits after {float(status.get('idle_exit_s', 0)):.0f} s idle"
        )
    return 0
