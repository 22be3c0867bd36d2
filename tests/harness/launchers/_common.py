"""Shared start-up contract of the emulator launchers.

The Rust harness (tests/harness/src/lib.rs) relies on three things from every
launcher: it binds the port itself (so two tests never race for a "free" port),
it announces the bound URL on one stdout line, and it dies as soon as its
stdin closes, which happens when the test process exits however it exits.
"""

import argparse
import logging
import os
import sys
import threading


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    return parser.parse_args()


def quiet_request_logs() -> None:
    # werkzeug logs one INFO line per request; keep stderr for real errors,
    # since the harness shows its tail when something goes wrong.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def exit_when_stdin_closes() -> None:
    def watch() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        # os._exit skips interpreter shutdown, which could block on server threads.
        os._exit(0)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def announce(host: str, port: int) -> None:
    # A wildcard bind is still reached through loopback.
    shown = "127.0.0.1" if host in ("", "0.0.0.0") else host
    sys.stdout.write(f"READY http://{shown}:{port}\n")
    sys.stdout.flush()
