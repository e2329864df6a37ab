"""A body at the 32 MiB limit — plain or gzip-encoded — must not take a Contacts worker past
400 MiB (issue: lean data path). The worker's peak resident size (VmHWM) is read from /proc
after each upload; uploads are parsed one contact at a time (contacts_service/upload.py), so
the peak stays near a few bodies' worth above the idle worker."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.support.clients import process_tree

LIMIT = 32 * 1024 * 1024
CEILING_MIB = 400


def peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def body_at_the_limit() -> bytes:
    """Contacts near the per-contact size limit (64 KiB), as many as fit under 32 MiB."""
    notes = "Lorem ipsum dolor sit amet, ünïcödé ✓ " * 1400  # ≈ 60 kB of UTF-8
    contacts, size = [], 20
    while True:
        contact = {
            "contactId": f"big-{len(contacts):04d}",
            "fname": "Big",
            "notes": notes,
            "contactEntries": [{"type": "tel", "uri": f"+1415555{len(contacts):04d}"}],
        }
        encoded = len(json.dumps(contact, ensure_ascii=False).encode()) + 1
        if size + encoded > LIMIT:
            break
        contacts.append(contact)
        size += encoded
    body = json.dumps({"upsert": contacts}, ensure_ascii=False, separators=(",", ":")).encode()
    assert LIMIT - 100_000 < len(body) <= LIMIT
    return body


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_a_body_at_the_limit_keeps_the_worker_under_400_mib(alice, contacts_server, encoding):
    body = body_at_the_limit()
    headers = {"Content-Type": "application/json"}
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body, 6), "gzip"
    alice.register("huge")
    response = alice.patch("/v1/devices/huge/contacts", data=body, headers=headers, timeout=300)
    assert response.status_code == 200, response.text
    assert response.json()["upserted"] > 500
    workers = [pid for pid in process_tree(contacts_server.process.pid)][:-1]
    peaks = {pid: peak_mib(pid) for pid in workers}
    assert max(peaks.values()) < CEILING_MIB, peaks
    fetched = alice.get("/v1/devices/huge/contacts", timeout=300)
    assert fetched.status_code == 200
    assert len(fetched.json()["contacts"]) == response.json()["upserted"]
    peaks = {pid: peak_mib(pid) for pid in workers}
    assert max(peaks.values()) < CEILING_MIB, peaks


def status_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


# One value of 30 MiB. A single character outside the BMP (the emoji) makes Python hold a text
# containing it at 4 bytes per character: parsed whole, this body took a worker to 675 MiB and
# left 270 MiB held after the answer.
_LONG = b"a" * (30 << 20) + "😀".encode()


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        (b'{"upsert":[{"contactId":"a","notes":"' + _LONG + b'"}]}', 422, "upsert.0"),
        (b'{"delete":["ok","' + _LONG + b'"]}', 422, "delete.1"),
        (b'{"upsert":[],"x":"' + _LONG + b'"}', 422, "x"),
        (b'{"upsert":[{"contactId":"a" "x"},{"notes":"' + _LONG + b'"}]}', 400, None),
    ],
    ids=["a-contact", "an-id-to-delete", "another-field", "a-broken-value-before-it"],
)
@pytest.mark.parametrize("encoding", ["identity", "gzip"])
def test_one_huge_value_is_refused_without_parsing_it(
    alice, contacts_server, body, status, where, encoding
):
    headers = {"Content-Type": "application/json"}
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body, 6), "gzip"
    workers = [pid for pid in process_tree(contacts_server.process.pid)][:-1]
    before = {pid: status_mib(pid, "VmRSS") for pid in workers}
    for pid in workers:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart the VmHWM high-water mark
    alice.register("huge-value")
    response = alice.patch(
        "/v1/devices/huge-value/contacts", data=body, headers=headers, timeout=300
    )
    assert response.status_code == status, response.text
    if where:
        assert list(response.json()["details"]) == [where]
    peaks = {pid: status_mib(pid, "VmHWM") - before[pid] for pid in workers}
    assert max(peaks.values()) < 150, peaks  # MiB above the worker before the request
    kept = {pid: status_mib(pid, "VmRSS") - before[pid] for pid in workers}
    assert max(kept.values()) < 64, kept  # what the request leaves held once answered
    assert alice.get("/v1/devices/huge-value").json()["contact_count"] == 0
