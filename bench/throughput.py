"""Throughput of an authenticated request against each service's no-op, measured with wrk.

    .venv/bin/python bench/throughput.py [--wrk-threads 2] [--connections 8] [--duration 10s]
                                         [--rounds 3] [--serve-args "--threads 8"]

Starts the stack as bench/ours.py does (private redis-server, throwaway PostgreSQL database,
stand-in provider, SSO and Contacts under gunicorn with 2 workers each), logs in, registers one
device, then per round runs `wrk -t2 -c8 -d10s` back to back against:

- Contacts `GET /healthz` (its no-op: no dependency is asked) and `GET /v1/devices` with the
  bearer token (introspection at the SSO + the account and device reads in PostgreSQL);
- SSO `GET /healthz` and `POST /v1/introspect` (form `token=…`, HTTP Basic client auth, from a
  wrk Lua script written to a temporary file).

Ratios are taken within a round (the machine is shared, so figures drift between rounds); the
median of the rounds' ratios is checked against the targets of issue 10: authenticated
`GET /v1/devices` ≥ 25 % of the Contacts no-op, introspection ≥ 60 % of the SSO no-op. wrk
(Debian package `wrk`) is installed with apt-get when missing. Used by bench/run.py as a step
(skip it there with --skip-throughput); alone it writes bench/results/throughput-<UTC>.json.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS = {
    "devices_vs_noop": (0.25, "Contacts GET /v1/devices ≥ 25% of Contacts GET /healthz"),
    "introspect_vs_noop": (0.60, "SSO POST /v1/introspect ≥ 60% of SSO GET /healthz"),
}
DEVICE_ID = "throughput"

# The figures wrk prints that the report needs.
_REQUESTS_PER_SECOND = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_LATENCY = re.compile(r"^\s+Latency\s+([\d.]+)(us|ms|s)\b", re.MULTILINE)
_TOTAL = re.compile(r"^\s+(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_TO_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def add_wrk_arguments(parser: argparse.ArgumentParser) -> None:
    """The wrk flags (bench/run.py takes these too)."""
    group = parser.add_argument_group("throughput (wrk)")
    group.add_argument("--wrk-threads", type=int, default=2, help="wrk -t (default 2)")
    group.add_argument("--connections", type=int, default=8, help="wrk -c (default 8)")
    group.add_argument("--duration", default="10s", help="wrk -d per measurement (default 10s)")
    group.add_argument(
        "--rounds", type=int, default=3, help="rounds of the four measurements (median ratio)"
    )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for the services this script starts itself."""
    group = parser.add_argument_group("services")
    group.add_argument(
        "--serve-args",
        default="",
        help='extra `serve` flags for both services, e.g. "--threads 8" (default: none)',
    )
    group.add_argument("--sso-serve-args", default="", help="extra `serve` flags for the SSO")
    group.add_argument("--contacts-serve-args", default="", help="extra `serve` flags for Contacts")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_wrk_arguments(parser)
    add_serve_arguments(parser)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


# --- wrk --------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The path of wrk, installed with apt-get (as root, once) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RuntimeError("wrk is missing: install the Debian package `wrk` (apt-get install wrk)")
    print("installing wrk with apt-get …", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("apt-get installed wrk but it is not on PATH")
    return found


def parse_wrk(output: str) -> dict:
    """req/s, mean latency (ms), requests, non-2xx answers and socket errors of one wrk run."""
    rate = _REQUESTS_PER_SECOND.search(output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    latency = _LATENCY.search(output)
    total = _TOTAL.search(output)
    non_2xx = _NON_2XX.search(output)
    errors = _SOCKET_ERRORS.search(output)
    return {
        "requests_per_second": float(rate.group(1)),
        "latency_ms": float(latency.group(1)) * _TO_MS[latency.group(2)] if latency else None,
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
    }


def run_wrk(wrk: str, url: str, args, *, script: str | None = None, headers=(), meter=None) -> dict:
    command = [
        wrk, f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.duration}",
        "--timeout", "5s",
    ]  # fmt: skip
    for header in headers:
        command += ["-H", header]
    if script:
        command += ["-s", script]
    command.append(url)
    before = meter.snapshot() if meter else None
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    figures = parse_wrk(done.stdout)
    if meter:
        figures["cpu_ms_per_request"] = meter.used_since(before, figures["requests"] or 0)
    if figures["non_2xx"] or figures["socket_errors"]:
        # A fast 401 or 503 is not the request measured.
        raise RuntimeError(f"{url}: errors under load: {figures}\n{done.stdout}")
    return figures


def introspection_script(token: str, client_id: str, client_secret: str) -> str:
    """A wrk Lua script sending the introspection POST (form body, HTTP Basic)."""
    basic = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode()
    return (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps('token=' + token)}\n"
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        f'wrk.headers["Authorization"] = "Basic {basic}"\n'
    )


# --- CPU accounting ---------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _tree(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            with open(f"/proc/{current}/task/{current}/children", encoding="ascii") as handle:
                queue += [int(child) for child in handle.read().split()]
        except OSError:
            pass
    return found


def _postgres_backends(database: str) -> list[int]:
    """The server processes of connections to `database` (their title names it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                title = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        if title.startswith("postgres: ") and f" {database} " in title:
            found.append(int(entry))
    return found


class CpuMeter:
    """CPU seconds the stack's parts spend while a measurement runs: the Contacts and SSO
    gunicorn trees, their redis-server and the PostgreSQL backends of their database. On a
    shared machine this per-request cost is steadier than req/s, which also depends on how
    much CPU the other work leaves."""

    def __init__(self, stack):
        self.stack = stack

    def _groups(self) -> dict[str, list[int]]:
        return {
            "contacts": _tree(self.stack.contacts.process.pid),
            "sso": _tree(self.stack.sso.process.pid),
            "redis": [self.stack.redis.process.pid],
            "postgres": _postgres_backends(self.stack.database.name),
        }

    def snapshot(self) -> dict[int, float]:
        return {pid: _cpu_seconds(pid) for pids in self._groups().values() for pid in pids}

    def used_since(self, before: dict[int, float], requests: int) -> dict[str, float]:
        """Milliseconds of CPU per request, per part, since `before`."""
        used = {}
        for name, pids in self._groups().items():
            seconds = sum(_cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids)
            used[name] = round(1000 * seconds / max(requests, 1), 4)
        used["total"] = round(sum(used.values()), 4)
        return used


# --- the stack --------------------------------------------------------------------------------


@contextlib.contextmanager
def _serve_args(extra: dict[str, list[str]]):
    """Start OurStack's services with extra `serve` flags per package (bench/ours.py takes
    none itself, and stays as `make bench` runs it otherwise)."""
    import bench.ours

    if not any(extra.values()):
        yield
        return
    original = bench.ours.ServiceProcess

    def service_process(package, env, *positional, **keywords):
        return original(package, env, *positional, extra_args=extra.get(package, []), **keywords)

    bench.ours.ServiceProcess = service_process
    try:
        yield
    finally:
        bench.ours.ServiceProcess = original


def serve_args_of(args) -> dict[str, list[str]]:
    both = shlex.split(args.serve_args)
    return {
        "sso_service": both + shlex.split(args.sso_serve_args),
        "contacts_service": both + shlex.split(args.contacts_serve_args),
    }


def start_stack(serve_args: dict[str, list[str]] | None = None):
    from bench.ours import OurStack

    stack = OurStack()
    with _serve_args(serve_args or {}):
        try:
            stack.start()
        except BaseException:
            stack.close(keep_logs=True)
            raise
    return stack


class Targets:
    """What the four measurements are run against, checked once before any load."""

    def __init__(self, stack, token: str):
        import requests

        client_id, _, client_secret = stack.sso.env["SSO_INTROSPECTION_CLIENTS"].partition(":")
        self.contacts_noop = stack.contacts.url + "/healthz"
        self.contacts_devices = stack.contacts.url + "/v1/devices"
        self.sso_noop = stack.sso.url + "/healthz"
        self.sso_introspect = stack.sso.url + "/v1/introspect"
        self.bearer = f"Authorization: Bearer {token}"
        self.script_text = introspection_script(token, client_id, client_secret)

        session = requests.Session()
        session.trust_env = False
        auth = {"Authorization": f"Bearer {token}"}
        registered = session.put(f"{self.contacts_devices}/{DEVICE_ID}", headers=auth, timeout=30)
        if registered.status_code not in (200, 201):
            raise RuntimeError(f"device registration answered {registered.status_code}")
        listed = session.get(self.contacts_devices, headers=auth, timeout=30)
        if listed.status_code != 200 or not listed.json()["devices"]:
            raise RuntimeError(f"GET /v1/devices answered {listed.status_code}: {listed.text}")
        answer = session.post(
            self.sso_introspect,
            data={"token": token},
            auth=(client_id, client_secret),
            timeout=30,
        )
        if answer.status_code != 200 or answer.json().get("active") is not True:
            raise RuntimeError(f"introspection answered {answer.status_code}: {answer.text}")


# --- the step ---------------------------------------------------------------------------------


def measure(stack, token: str, args) -> dict:
    """Run the rounds against a started stack; the figures, ratios and target verdicts."""
    wrk = ensure_wrk()
    targets = Targets(stack, token)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as folder:
        script = os.path.join(folder, "introspect.lua")
        with open(script, "w", encoding="utf-8") as handle:
            handle.write(targets.script_text)
        os.chmod(script, 0o600)
        warm = argparse.Namespace(**{**vars(args), "duration": "2s"})
        run_wrk(wrk, targets.contacts_devices, warm, headers=[targets.bearer])
        run_wrk(wrk, targets.sso_introspect, warm, script=script)
        meter = CpuMeter(stack)
        rounds = []
        for number in range(args.rounds):
            one = {
                "load_average_1m": os.getloadavg()[0],
                "contacts_noop": run_wrk(wrk, targets.contacts_noop, args, meter=meter),
                "contacts_devices": run_wrk(
                    wrk, targets.contacts_devices, args, headers=[targets.bearer], meter=meter
                ),
                "sso_noop": run_wrk(wrk, targets.sso_noop, args, meter=meter),
                "sso_introspect": run_wrk(
                    wrk, targets.sso_introspect, args, script=script, meter=meter
                ),
            }
            one["devices_vs_noop"] = _ratio(one["contacts_devices"], one["contacts_noop"])
            one["introspect_vs_noop"] = _ratio(one["sso_introspect"], one["sso_noop"])
            rounds.append(one)
            print(f"throughput round {number + 1}/{args.rounds}: {_line(one)}", flush=True)
    return summarise(rounds, args)


def _ratio(measured: dict, noop: dict) -> float:
    return measured["requests_per_second"] / noop["requests_per_second"]


def summarise(rounds: list[dict], args) -> dict:
    names = ("contacts_noop", "contacts_devices", "sso_noop", "sso_introspect")
    medians = {
        name: statistics.median(r[name]["requests_per_second"] for r in rounds) for name in names
    }
    cpu = {
        name: statistics.median(r[name]["cpu_ms_per_request"]["total"] for r in rounds)
        for name in names
    }
    targets = {}
    for key, (floor, text) in TARGETS.items():
        ratio = statistics.median(r[key] for r in rounds)
        targets[key] = {
            "target": text,
            "ratio": ratio,
            "per_round": [r[key] for r in rounds],
            "met": ratio >= floor,
        }
    return {
        "wrk": {
            "threads": args.wrk_threads,
            "connections": args.connections,
            "duration": args.duration,
            "rounds": args.rounds,
        },
        "serve_args": {
            name: " ".join(flags) or "defaults" for name, flags in serve_args_of(args).items()
        }
        if hasattr(args, "serve_args")
        else "as bench/run.py started them",
        "rounds": rounds,
        "median_requests_per_second": medians,
        "median_cpu_ms_per_request": cpu,
        "cpu_ratios": {
            "devices_vs_noop": cpu["contacts_noop"] / cpu["contacts_devices"],
            "introspect_vs_noop": cpu["sso_noop"] / cpu["sso_introspect"],
        },
        "targets": targets,
    }


def _line(one: dict) -> str:
    rate = {k: v["requests_per_second"] for k, v in one.items() if isinstance(v, dict)}
    cpu = {k: v["cpu_ms_per_request"]["total"] for k, v in one.items() if isinstance(v, dict)}
    return (
        f"Contacts /healthz {rate['contacts_noop']:.0f} ({cpu['contacts_noop']:.2f} ms CPU), "
        f"/v1/devices {rate['contacts_devices']:.0f} req/s ({cpu['contacts_devices']:.2f} ms) "
        f"= {one['devices_vs_noop']:.1%}; SSO /healthz {rate['sso_noop']:.0f} "
        f"({cpu['sso_noop']:.2f} ms), /v1/introspect {rate['sso_introspect']:.0f} req/s "
        f"({cpu['sso_introspect']:.2f} ms) = {one['introspect_vs_noop']:.1%}; "
        f"load {one['load_average_1m']:.1f}"
    )


def render(result: dict) -> str:
    w = result["wrk"]
    lines = [
        f"Throughput (wrk -t{w['threads']} -c{w['connections']} -d{w['duration']}, "
        f"{w['rounds']} rounds, medians; serve args: {result['serve_args']}):",
    ]
    medians = result["median_requests_per_second"]
    labels = {
        "contacts_noop": "Contacts GET /healthz",
        "contacts_devices": "Contacts GET /v1/devices (bearer)",
        "sso_noop": "SSO GET /healthz",
        "sso_introspect": "SSO POST /v1/introspect",
    }
    cpu = result["median_cpu_ms_per_request"]
    lines += [
        f"  {labels[name]:<36} {value:8.0f} req/s   {cpu[name]:6.3f} ms CPU/request"
        for name, value in medians.items()
    ]
    verdicts = {True: "MET", False: "MISSED"}
    for target in result["targets"].values():
        per_round = ", ".join(f"{r:.1%}" for r in target["per_round"])
        lines.append(
            f"Target: {target['target']}: {verdicts[target['met']]} — median ratio "
            f"{target['ratio']:.1%} (rounds: {per_round})"
        )
    ratios = result["cpu_ratios"]
    lines.append(
        "CPU cost ratios (no-op CPU per request / measured CPU per request, all parts of the "
        f"stack): devices {ratios['devices_vs_noop']:.1%}, introspect "
        f"{ratios['introspect_vs_noop']:.1%}"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    stamp = datetime.datetime.now(datetime.UTC)
    ensure_wrk()
    from bench.measure import CountingSession

    print("starting redis, PostgreSQL database, provider, SSO, Contacts …", flush=True)
    stack = start_stack(serve_args_of(args))
    failed = False
    try:
        token = stack.login(CountingSession())
        result = measure(stack, token, args)
    except BaseException:
        failed = True
        raise
    finally:
        stack.close(keep_logs=failed)
    result = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": " ".join(["bench/throughput.py", *(argv if argv is not None else sys.argv[1:])]),
        "cpus": os.cpu_count(),
        **result,
    }
    print()
    print(render(result))
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"throughput-{stamp.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
