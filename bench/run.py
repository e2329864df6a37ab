"""`make bench`: our Contacts service against Radicale (CardDAV) on the same sync scenario.

    .venv/bin/python bench/run.py [--sizes 5000,20000] [--runs 3] [--quick] [--only ours|radicale]
                                  [--skip-throughput] [--duration 10s] [--rounds 3] ...

Starts everything it measures on loopback (private redis-server, throwaway PostgreSQL database,
stand-in provider, SSO and Contacts under gunicorn with 2 workers each, Radicale with a
temporary storage folder), runs the scenario per size and run on a fresh device / collection,
prints the table of medians with the Radicale/ours ratio, bytes and peak RSS, checks the two
targets and writes everything to bench/results/bench-<timestamp>.json. Then, on the same
stack, the throughput step (bench/throughput.py: wrk against an authenticated request and each
service's no-op) unless --skip-throughput. See docs/bench.md.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import throughput  # noqa: E402
from bench.data import generate, make_changes  # noqa: E402
from bench.measure import (  # noqa: E402
    CountingSession,
    peak_pss_bound_mib,
    peak_rss_mib,
    process_tree,
    reset_peak_rss,
    status_mib,
)

TARGET_RATIO = 10.0
TARGET_ALL_RSS_MIB = 300  # every process of both services, 20,000 contacts
TARGET_GROWTH = 3.0  # a worker's peak growth per request, in bodies
TARGET_SCALING = 2.0

# (row key, step, ours variant, Radicale variant, ours figure, Radicale figure)
ROWS = [
    ("upload", "initial upload", "1 PATCH", "collection PUT", "upload", "upload"),
    ("upload_batched", "initial upload", "PATCHes of 1,000", "collection PUT",
     "upload_batched", "upload"),
    ("checksums", "checksum listing", "GET /checksums", "PROPFIND getetag",
     "checksums", "checksums"),
    ("blocks", "checksum listing", "?blocks=8", "PROPFIND getetag", "blocks", "checksums"),
    ("incremental", "incremental sync", "1 PATCH", "PUT/DELETE + REPORT",
     "incremental", "incremental"),
    ("since", "read changes", "?since=rev", "sync REPORT + multiget", "since", "since"),
    ("full_fetch", "full fetch", "GET /contacts", "GET collection", "full_fetch", "full_fetch"),
    ("unchanged", "unchanged re-fetch", "If-None-Match 304", "sync REPORT",
     "unchanged", "unchanged"),
]  # fmt: skip


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5000,20000", help="address book sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3, help="runs per size (median is reported)")
    parser.add_argument("--quick", action="store_true", help="smoke test: N=500, 1 run")
    parser.add_argument("--only", choices=("ours", "radicale"), help="run one side only")
    parser.add_argument("--vcard", choices=("3.0", "4.0"), default="3.0", help="vCard version")
    parser.add_argument("--seed", type=int, default=20261127)
    parser.add_argument(
        "--budget", type=float, default=3600, help="stop starting new runs after this many seconds"
    )
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--skip-throughput", action="store_true", help="skip the wrk step (bench/throughput.py)"
    )
    throughput.add_wrk_arguments(parser)
    args = parser.parse_args(argv)
    args.sizes = [500] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.quick:
        args.runs = 1
    return args


def _as_json(figures: dict) -> dict:
    """Step name → its measured seconds, bytes and request count."""
    return {
        k: {"seconds": s.seconds, "bytes": s.bytes, "requests": s.requests}
        for k, s in figures.items()
    }


def run_ours(stack, session, token, book, changes) -> dict:
    from bench.ours import OurRun

    run = OurRun(stack, session, token)
    try:
        figures = {
            "upload": run.initial_upload(book),
            "upload_batched": run.initial_upload_batched(book),
            "checksums": run.checksum_listing(len(book)),
            "blocks": run.checksum_blocks(8),
            "incremental": run.incremental_sync(changes),
            "since": run.changes_since(changes),
        }
        final = len(book) - len(changes.deleted) + len(changes.added)
        figures["full_fetch"] = run.full_fetch(final)
        figures["unchanged"] = run.unchanged_refetch()
    finally:
        run.drop()
    return _as_json(figures)


def run_radicale(server, session, book, changes, version) -> dict:
    from bench.radicale_side import RadicaleRun

    run = RadicaleRun(server, session, version)
    try:
        figures = {
            "upload": run.initial_upload(book),
            "checksums": run.checksum_listing(len(book)),
        }
        run.remember_sync_token()
        figures["incremental"], figures["incremental_report"] = run.incremental_sync(changes)
        figures["since"] = run.changes_since(changes)
        final = len(book) - len(changes.deleted) + len(changes.added)
        figures["full_fetch"] = run.full_fetch(final)
        figures["unchanged"] = run.unchanged_refetch()
    finally:
        run.drop()
    return _as_json(figures)


def median_of(runs: list[dict], key: str, field: str) -> float | None:
    values = [run[key][field] for run in runs if key in run]
    return statistics.median(values) if values else None


def build_table(results: dict) -> list[dict]:
    table = []
    for size, per_size in results["sizes"].items():
        for key, step, ours_how, radicale_how, ours_key, radicale_key in ROWS:
            ours_s = median_of(per_size["ours"], ours_key, "seconds")
            radicale_s = median_of(per_size["radicale"], radicale_key, "seconds")
            table.append(
                {
                    "row": key,
                    "step": step,
                    "ours": ours_how,
                    "radicale": radicale_how,
                    "n": int(size),
                    "ours_s": ours_s,
                    "radicale_s": radicale_s,
                    "ratio": radicale_s / ours_s if ours_s and radicale_s else None,
                    "ours_bytes": median_of(per_size["ours"], ours_key, "bytes"),
                    "radicale_bytes": median_of(per_size["radicale"], radicale_key, "bytes"),
                    "ours_requests": median_of(per_size["ours"], ours_key, "requests"),
                    "radicale_requests": median_of(per_size["radicale"], radicale_key, "requests"),
                }
            )
    return table


def check_targets(table: list[dict]) -> dict:
    compared = [row for row in table if row["ratio"] is not None]
    misses = [row for row in compared if row["ratio"] < TARGET_RATIO]
    speed = {
        "target": f"ours ≥{TARGET_RATIO:g}x faster than Radicale on every step at every size",
        "met": (not misses) if compared else None,
        "misses": [
            f"{r['step']} ({r['ours']} vs {r['radicale']}) N={r['n']}: ours {r['ours_s']:.4f} s, "
            f"Radicale {r['radicale_s']:.4f} s, ratio {r['ratio']:.1f}x"
            for r in misses
        ],
    }
    incremental = {r["n"]: r["ours_s"] for r in table if r["row"] == "incremental" and r["ours_s"]}
    scaling = {"target": f"incremental sync at 20,000 ≤ {TARGET_SCALING:g}x its time at 5,000"}
    if 5000 in incremental and 20000 in incremental:
        factor = incremental[20000] / incremental[5000]
        scaling.update(
            met=factor <= TARGET_SCALING,
            figures=f"{incremental[5000]:.4f} s at 5,000 → {incremental[20000]:.4f} s at 20,000 "
            f"({factor:.2f}x)",
        )
    else:
        scaling.update(met=None, figures="needs ours at both 5,000 and 20,000")
    heavier = [
        f"{r['step']} ({r['ours']}) N={r['n']}: ours {_fmt_bytes(r['ours_bytes'])}, "
        f"Radicale {_fmt_bytes(r['radicale_bytes'])}"
        for r in table
        if r["ours_bytes"] and r["radicale_bytes"] and r["ours_bytes"] > r["radicale_bytes"]
    ]
    wire = {
        "target": "with gzip, ours sends and receives no more bytes than Radicale on every step",
        "met": (not heavier) if compared else None,
        "misses": heavier,
    }
    return {"speed": speed, "scaling": scaling, "wire": wire}


def per_process_peaks(stack) -> dict[str, dict]:
    """Each process of both services: its RSS now and its peak since the last reset (MiB)."""
    found = {}
    for service, part in (("contacts", stack.contacts), ("sso", stack.sso)):
        for number, pid in enumerate(process_tree(part.process.pid)):
            role = "master" if number == 0 else f"worker {pid}"
            found[f"{service} {role}"] = {
                "rss": status_mib(pid, "VmRSS"),
                "peak": status_mib(pid, "VmHWM"),
            }
    return found


def _fmt_s(value):
    return f"{value:.4f}" if value is not None else "—"


def _fmt_bytes(value):
    if value is None:
        return "—"
    return f"{value / 1e6:.2f} MB" if value >= 1e6 else f"{value / 1e3:.1f} kB"


def render(results: dict) -> str:
    header = (
        "step",
        "ours / Radicale",
        "N",
        "ours median s",
        "Radicale median s",
        "Radicale/ours",
        "bytes ours",
        "bytes Radicale",
    )
    rows = [
        (
            r["step"],
            f"{r['ours']} / {r['radicale']}",
            f"{r['n']:,}",
            _fmt_s(r["ours_s"]),
            _fmt_s(r["radicale_s"]),
            f"{r['ratio']:.1f}x" if r["ratio"] else "—",
            _fmt_bytes(r["ours_bytes"]),
            _fmt_bytes(r["radicale_bytes"]),
        )
        for r in results["table"]
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines.append("")
    lines.append("Peak RSS (VmHWM summed over each process tree, MiB; reset before each size):")
    for size, rss in results["peak_rss_mib"].items():
        parts = ", ".join(f"{name} {value:.0f}" for name, value in rss.items())
        lines.append(f"  N={int(size):,}: {parts}")
    loads = ", ".join(
        f"{'start' if key == 'start' else f'after N={int(key):,}'} {value[0]:.1f}"
        for key, value in results["load_average"].items()
    )
    lines.append(f"Load average (1 min) on {results['cpus']} CPUs: {loads}")
    lines.append("")
    targets = results["targets"]
    speed, scaling = targets["speed"], targets["scaling"]
    verdicts = {True: "MET", False: "MISSED", None: "NOT MEASURED"}
    lines.append(f"Target: {speed['target']}: {verdicts[speed['met']]}")
    lines += [f"  miss: {m}" for m in speed["misses"]]
    lines.append(f"Target: {scaling['target']}: {verdicts[scaling['met']]} — {scaling['figures']}")
    wire = targets.get("wire")
    if wire:
        lines.append(f"Target: {wire['target']}: {verdicts[wire['met']]}")
        lines += [f"  miss: {m}" for m in wire["misses"]]
    for size, processes in results.get("processes", {}).items():
        lines.append(f"Per process at N={int(size):,} (MiB: RSS before the size → peak during it):")
        for name, figures in processes.items():
            lines.append(
                f"  {name}: {figures['before']:.0f} → {figures['peak']:.0f}"
                f" (+{figures['peak'] - figures['before']:.0f})"
            )
        total = sum(figures["peak"] for figures in processes.values())
        lines.append(
            f"  all processes of both services: {total:.0f} MiB, the sum of each one's peak"
            " RSS (counts a page the master and workers share once per process)"
        )
        pss = results.get("peak_pss_mib", {}).get(size)
        if pss:
            lines.append(
                "  peak PSS sum (the memory they occupy together; an upper bound, see"
                " bench/measure.py): "
                + ", ".join(f"{name} {value:.0f} MiB" for name, value in pss.items())
                + f" (target ≤ {TARGET_ALL_RSS_MIB} MiB for both services at 20,000)"
            )
        memory = results.get("memory_per_request", {}).get(size)
        if memory:
            lines.append(
                "  one request's worker growth (target ≤ "
                f"{TARGET_GROWTH:g}x the body): "
                + "; ".join(
                    f"{name} of {figures['body_mib']:.1f} MiB +{figures['growth_mib']:.0f} MiB"
                    f" ({figures['per_body']:.1f}x)"
                    for name, figures in memory.items()
                )
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    stamp = datetime.datetime.now(datetime.UTC)
    results: dict = {
        "date": stamp.isoformat(timespec="seconds"),
        "command": " ".join(["bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "runs": args.runs,
        "vcard": args.vcard,
        "seed": args.seed,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "sizes": {},
        "peak_rss_mib": {},
        "load_average": {"start": os.getloadavg()},
        "incomplete": False,
    }
    stack = radicale = None
    try:
        if args.only != "radicale" and not args.skip_throughput:
            throughput.ensure_wrk()  # before anything runs: a missing wrk fails at once
        if args.only != "radicale":
            from bench.ours import OurStack

            print("starting redis, PostgreSQL database, provider, SSO, Contacts …", flush=True)
            stack = OurStack()
            stack.start()
            ours_session = CountingSession()
            token = stack.login(ours_session)
        if args.only != "ours":
            from bench.radicale_side import RadicaleServer

            print("starting Radicale …", flush=True)
            radicale = RadicaleServer()
            radicale.start()
            radicale_session = CountingSession()
            results["radicale_version"] = importlib.metadata.version("radicale")

        for size in args.sizes:
            per_size = results["sizes"][str(size)] = {"ours": [], "radicale": []}
            book = generate(size, args.seed + size)
            for pid in _pids(stack, radicale).values():
                reset_peak_rss(pid)
            before = per_process_peaks(stack) if stack else {}
            for number in range(args.runs):
                if time.monotonic() - started > args.budget:
                    print(f"budget of {args.budget:.0f} s spent: stopping", flush=True)
                    results["incomplete"] = True
                    break
                changes = make_changes(book, seed=args.seed + size * 10 + number)
                if stack:
                    per_size["ours"].append(run_ours(stack, ours_session, token, book, changes))
                if radicale:
                    per_size["radicale"].append(
                        run_radicale(radicale, radicale_session, book, changes, args.vcard)
                    )
                print(f"N={size:,} run {number + 1}/{args.runs} done", flush=True)
            results.setdefault("peak_pss_mib", {})[str(size)] = {
                name: sum(peak_pss_bound_mib(pid) for pid in pids)
                for name, pids in _pss_groups(stack, radicale).items()
            }
            results["load_average"][str(size)] = os.getloadavg()
            results["peak_rss_mib"][str(size)] = {
                name: peak_rss_mib(pid) for name, pid in _pids(stack, radicale).items()
            }
            if stack:
                results.setdefault("processes", {})[str(size)] = {
                    name: {"before": before.get(name, {}).get("rss", 0.0), "peak": now["peak"]}
                    for name, now in per_process_peaks(stack).items()
                }
                # Last: it resets the workers' high-water marks read above.
                from bench.ours import memory_growth

                results.setdefault("memory_per_request", {})[str(size)] = memory_growth(
                    stack, ours_session, book
                )
        if stack and not args.skip_throughput:
            print("throughput step (wrk) …", flush=True)
            results["throughput"] = throughput.measure(stack, token, args)
    except Exception as exc:  # still print and keep what was measured
        print(traceback.format_exc()[-4000:], file=sys.stderr)
        results["incomplete"] = True
        results["error"] = repr(exc)
    finally:
        if stack:
            stack.close(keep_logs="error" in results)
        if radicale:
            radicale.close(keep_logs="error" in results)

    results["table"] = build_table(results)
    results["targets"] = check_targets(results["table"])
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    print()
    print(render(results))
    if "throughput" in results:
        print()
        print(throughput.render(results["throughput"]))
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"bench-{stamp.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 1 if "error" in results else 0


def _pss_groups(stack, radicale) -> dict[str, list[int]]:
    groups = {}
    if stack:
        groups["both services"] = [stack.contacts.process.pid, stack.sso.process.pid]
    if radicale:
        groups["radicale"] = [radicale.process.pid]
    return groups


def _pids(stack, radicale) -> dict[str, int]:
    pids = {}
    if stack:
        pids["contacts (gunicorn tree)"] = stack.contacts.process.pid
        pids["sso (gunicorn tree)"] = stack.sso.process.pid
    if radicale:
        pids["radicale"] = radicale.process.pid
    return pids


if __name__ == "__main__":
    sys.exit(main())
