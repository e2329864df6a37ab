"""E.164 normalisation speed: phonenumbers' full parse (the old parse_e164) against the fast path.

    .venv/bin/python bench/phone_speed.py [--count 50000] [--repeat 5] [--seed 1]

Two sets of `count` (number, region) pairs, deterministic for a seed:

- "book": numbers as bench/data.py's `_phone` writes them for its regions (the shapes of the
  upload benchmark's phone books);
- "mixed": half of those, half what real books also hold: dots, slashes, no-break spaces,
  "tel:" URIs, extensions, IDD prefixes (00 / 011 / 810 / "+00"), letters, full-width and
  Arabic-Indic digits, short numbers and junk.

For each set it checks both give the same answer for every pair, then times each over the
whole set `repeat` times (uncached: an upload's numbers are nearly all new) and prints the best
and median time per number and the speedup. Nothing here is a test; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import phonenumbers  # noqa: E402

from bench.data import _DIALLING, _phone  # noqa: E402
from shared import phone  # noqa: E402

_E164 = phonenumbers.PhoneNumberFormat.E164


def old_parse_e164(text: str, region: str | None) -> str | None:
    """parse_e164 before the fast path (without its cache): the slow path for everything."""
    if len(text) > phone.MAX_NUMBER_LENGTH:
        return None
    return phone._slow_e164(text, region)


new_parse_e164 = phone.parse_e164.__wrapped__  # the same function, without the lru_cache

REGIONS = sorted(_DIALLING)


def book_numbers(rng: random.Random, count: int) -> list[tuple[str, str]]:
    pairs = []
    for _ in range(count):
        region = rng.choice(REGIONS)
        pairs.append((_phone(rng, region), region))
    return pairs


def _other_shape(rng: random.Random, number: str, region: str) -> str:
    code, _ = _DIALLING[region]
    digits = "".join(c for c in number if c.isdigit())
    national = digits[len(code) :] if number.startswith("+") else digits.lstrip("08")
    shapes = (
        f"{national[:3]}.{national[3:6]}.{national[6:]}",
        f"{national[:3]}/{national[3:]}",
        f"{national[:3]}\u00a0{national[3:]}",
        f"tel:+{code}{national}",
        f"tel:+{code}-{national[:3]}-{national[3:]};ext=12",
        f"+{code} {national} x{rng.randint(1, 999)}",
        f"+{code} {national} ext. {rng.randint(1, 99)}",
        f"00{code} {national}",
        f"011 {code} {national}",
        f"+00{code}{national}",
        f"+{code} (0){national}",
        "1-800-FLOWERS",
        "".join(chr(0xFF10 + int(d)) for d in f"{code}{national}"),
        "+" + "".join(chr(0x0660 + int(d)) for d in f"{code}{national}"),
        str(rng.randint(100, 119)),
        rng.choice(("", "+", "n/a", "ask reception", "--", "()")),
    )
    return rng.choice(shapes)


def mixed_numbers(rng: random.Random, count: int) -> list[tuple[str, str | None]]:
    pairs: list[tuple[str, str | None]] = []
    for number, region in book_numbers(rng, count):
        if rng.random() < 0.5:
            number = _other_shape(rng, number, region)
        pairs.append((number, region if rng.random() < 0.9 else None))
    return pairs


def run(name: str, pairs: list, repeat: int) -> None:
    old = [old_parse_e164(text, region) for text, region in pairs]
    new = [new_parse_e164(text, region) for text, region in pairs]
    differ = sum(a != b for a, b in zip(old, new, strict=True))
    if differ:
        raise SystemExit(f"{name}: {differ} numbers differ between the old and the new path")
    fast = sum(phone._fast_e164(text, region) is not phone._SLOW for text, region in pairs)
    kept = sum(e164 is not None for e164 in new)

    timings: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(repeat):  # interleaved, so load on the machine hits both alike
        for label, function in (("old", old_parse_e164), ("new", new_parse_e164)):
            started = time.perf_counter()
            for text, region in pairs:
                function(text, region)
            timings[label].append(time.perf_counter() - started)

    count = len(pairs)
    print(
        f"{name}: {count:,} numbers, {kept:,} possible, {fast / count:.0%} on the fast path, "
        f"same answers: yes"
    )
    for label in ("old", "new"):
        best, median = min(timings[label]), statistics.median(timings[label])
        print(
            f"  {label}: best {best:.3f} s ({best / count * 1e6:.1f} µs/number), "
            f"median {median:.3f} s"
        )
    best = min(timings["old"]) / min(timings["new"])
    median = statistics.median(timings["old"]) / statistics.median(timings["new"])
    print(f"  speedup: {best:.1f}x (best), {median:.1f}x (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(
        f"phonenumbers {phonenumbers.__version__}, Python {sys.version.split()[0]}, "
        f"fast path {'on' if phone._FAST_PATH else 'OFF'}"
    )
    run("book", book_numbers(random.Random(args.seed), args.count), args.repeat)
    run("mixed", mixed_numbers(random.Random(args.seed + 1), args.count), args.repeat)


if __name__ == "__main__":
    main()
