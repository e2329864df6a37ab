"""Seconds from exec to the first 200 from /healthz, for a binary or any serve command.

    python deploy/binaries/startup_time.py --url http://127.0.0.1:18001/healthz -- \
        dist/sso-server serve --bind 127.0.0.1:18001 --workers 2

The command's environment is this process's; it is stopped (SIGTERM) once measured. Repeat
with --runs N to see the spread (the first run of a one-file binary also pays page-cache misses).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import subprocess
import sys
import time
import urllib.request


def measure(command: list[str], url: str, timeout: float) -> float:
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                raise SystemExit(f"command exited with status {process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:  # refused, reset, or accepted by the master before a worker is up
                time.sleep(0.01)
        raise SystemExit(f"no 200 from {url} within {timeout} s")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    times = []
    for run in range(1, args.runs + 1):
        times.append(measure(command, args.url, args.timeout))
        print(f"run {run}: {times[-1]:.2f} s", flush=True)
    print(
        f"median {statistics.median(times):.2f} s, min {min(times):.2f} s, max {max(times):.2f} s"
    )


if __name__ == "__main__":
    sys.exit(main())
