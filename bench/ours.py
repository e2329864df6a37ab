"""Our side of the benchmark: the real SSO + Contacts stack and the sync scenario over its API."""

from __future__ import annotations

import contextlib
import gzip
import json
import secrets
import sys
import uuid

from bench.data import Changes
from bench.measure import (
    CountingSession,
    Step,
    expect,
    process_tree,
    reset_peak_rss,
    status_mib,
)
from tests.support.servers import ROOT, PostgresDatabase, RedisServer, ServiceProcess
from tests.support.stack import sso_env

sys.path.insert(0, str(ROOT / "deploy" / "demo"))

from demo_provider import DemoProvider

CLOUD_ID = "BENCH"
USERNAME = "bench"
PASSWORD = "bench-password"
CLIENT_ID = "contacts"

JSON = {"Content-Type": "application/json"}
GZIP_JSON = {**JSON, "Content-Encoding": "gzip"}


def encode(body: dict) -> bytes:
    """What a client sends: compact UTF-8 JSON (encoded before the clock starts)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def upload_body(body: dict, compress: bool) -> bytes:
    """A PATCH body as a phone app sends it: gzip (level 6, Python's default for zlib) when
    `compress`, prepared before the clock starts like encode()."""
    raw = encode(body)
    return gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw


class OurStack:
    """Private redis-server, a throwaway PostgreSQL database, the stand-in provider, and both
    services under gunicorn with 2 workers each, as `make run` would start them."""

    def __init__(self, workers: int = 2):
        self.workers = workers
        self.redis: RedisServer | None = None
        self.database: PostgresDatabase | None = None
        self.provider: DemoProvider | None = None
        self.sso: ServiceProcess | None = None
        self.contacts: ServiceProcess | None = None

    def start(self) -> OurStack:
        client_secret = secrets.token_urlsafe(32)
        self.redis = RedisServer().start()
        self.database = PostgresDatabase().create()
        self.provider = DemoProvider().start()
        self.provider.add_user(CLOUD_ID, USERNAME, PASSWORD, ["+14155550100"], "sip:bench@bench")
        self.sso = ServiceProcess(
            "sso_service",
            sso_env(
                self.redis.url,
                self.provider,
                SSO_TOKEN_SECRET=secrets.token_hex(32),
                SSO_INTROSPECTION_CLIENTS=f"{CLIENT_ID}:{client_secret}",
                LOG_LEVEL="WARNING",
            ),
            workers=self.workers,
        ).start()
        self.contacts = ServiceProcess(
            "contacts_service",
            {
                "CONTACTS_DATABASE_URL": self.database.url,
                "CONTACTS_SSO_URL": self.sso.url,
                "CONTACTS_SSO_CLIENT_ID": CLIENT_ID,
                "CONTACTS_SSO_CLIENT_SECRET": client_secret,
                "LOG_LEVEL": "WARNING",
            },
            workers=self.workers,
        ).start(timeout=60)
        return self

    def login(self, session: CountingSession) -> str:
        response = expect(
            session.post(
                self.sso.url + "/v1/tokens",
                json={"username": USERNAME, "password": PASSWORD, "cloud_id": CLOUD_ID},
                timeout=30,
            ),
            200,
        )
        return response.json()["token"]

    def close(self, keep_logs: bool = False) -> None:
        for part in (self.contacts, self.sso):
            if part:
                with contextlib.suppress(Exception):
                    part.stop()
                if keep_logs:
                    print(f"{part.package} log: {part.log_path}", file=sys.stderr)
                else:
                    part.log_path.unlink(missing_ok=True)
        if self.provider:
            with contextlib.suppress(Exception):
                self.provider.stop()
        if self.database:
            with contextlib.suppress(Exception):
                self.database.drop()
        if self.redis:
            with contextlib.suppress(Exception):
                self.redis.close()


class OurRun:
    """One run of the scenario on a fresh device."""

    def __init__(
        self, stack: OurStack, session: CountingSession, token: str, compress: bool = True
    ):
        self.session = session
        self.compress = compress
        self.write_headers = GZIP_JSON if compress else JSON
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.base = stack.contacts.url + "/v1/devices/"
        self.device = self.register(f"bench-{uuid.uuid4().hex[:12]}")
        self.revision = 0
        self.etag: str | None = None

    def register(self, device_id: str) -> str:
        expect(
            self.session.put(
                self.base + device_id, data=encode({"name": "bench", "platform": "bench"}),
                headers=JSON, timeout=30,
            ),
            201,
        )  # fmt: skip
        return device_id

    def _patch(self, device: str, body: bytes) -> dict:
        response = self.session.patch(
            f"{self.base}{device}/contacts", data=body, headers=self.write_headers, timeout=900
        )
        return expect(response, 200).json()

    def initial_upload(self, book: list[dict]) -> Step:
        """All N contacts in one PATCH."""
        body = upload_body({"upsert": book}, self.compress)
        with Step(self.session) as step:
            result = self._patch(self.device, body)
        if result["upserted"] != len(book):
            raise RuntimeError(f"upload upserted {result['upserted']} of {len(book)}")
        self.revision = result["revision"]
        return step

    def initial_upload_batched(self, book: list[dict], batch: int = 1000) -> Step:
        """All N contacts in PATCHes of `batch`, on a second fresh device (deleted after)."""
        device = self.register(f"bench-batched-{uuid.uuid4().hex[:12]}")
        bodies = [
            upload_body({"upsert": book[i : i + batch]}, self.compress)
            for i in range(0, len(book), batch)
        ]
        with Step(self.session) as step:
            for body in bodies:
                self._patch(device, body)
        self.session.delete(self.base + device, timeout=300)
        return step

    def checksum_listing(self, count: int) -> Step:
        """GET /checksums: every contactId with its checksum."""
        with Step(self.session) as step:
            response = expect(
                self.session.get(f"{self.base}{self.device}/checksums", timeout=300), 200
            )
        listed = len(response.json()["checksums"])
        if listed != count:
            raise RuntimeError(f"checksums listed {listed}, expected {count}")
        return step

    def checksum_blocks(self, bits: int = 8) -> Step:
        """GET /checksums?blocks=bits: one checksum per block."""
        url = f"{self.base}{self.device}/checksums?blocks={bits}"
        with Step(self.session) as step:
            expect(self.session.get(url, timeout=300), 200)
        return step

    def incremental_sync(self, changes: Changes) -> Step:
        """Edits, adds and deletes in one PATCH."""
        body = upload_body(
            {"upsert": changes.edited + changes.added, "delete": changes.deleted}, self.compress
        )
        with Step(self.session) as step:
            result = self._patch(self.device, body)
        expected = (len(changes.edited) + len(changes.added), len(changes.deleted))
        if (result["upserted"], result["deleted"]) != expected:
            raise RuntimeError(f"incremental sync answered {result}, expected {expected}")
        self.previous_revision, self.revision = self.revision, result["revision"]
        return step

    def changes_since(self, changes: Changes) -> Step:
        """GET /contacts?since=<revision before the incremental sync>: what another app reads."""
        url = f"{self.base}{self.device}/contacts?since={self.previous_revision}"
        with Step(self.session) as step:
            response = expect(self.session.get(url, timeout=300), 200)
        body = response.json()
        if len(body["contacts"]) != len(changes.edited) + len(changes.added) or len(
            body["deleted"]
        ) != len(changes.deleted):
            raise RuntimeError("?since did not return exactly the changes")
        return step

    def full_fetch(self, count: int) -> Step:
        """GET /contacts: the whole book (and its ETag)."""
        with Step(self.session) as step:
            response = expect(
                self.session.get(f"{self.base}{self.device}/contacts", timeout=600), 200
            )
        fetched = len(response.json()["contacts"])
        if fetched != count:
            raise RuntimeError(f"GET contacts returned {fetched}, expected {count}")
        self.etag = response.headers["ETag"]
        return step

    def unchanged_refetch(self) -> Step:
        """GET /contacts with If-None-Match: 304."""
        with Step(self.session) as step:
            expect(
                self.session.get(
                    f"{self.base}{self.device}/contacts",
                    headers={"If-None-Match": self.etag},
                    timeout=300,
                ),
                304,
            )
        return step

    def drop(self) -> None:
        """Delete the device (not timed)."""
        self.session.delete(self.base + self.device, timeout=300)


def memory_growth(stack: OurStack, session: CountingSession, book: list[dict]) -> dict:
    """How much one upload of `book` (one PATCH, plain JSON) and then one full fetch of it
    (gzip accepted, as phones ask) grow the worker that serves them: VmHWM after the request
    minus VmRSS before. Measured on a Contacts service of its own (same database and SSO, one
    worker) that has served only one small upload, so what the worker holds from the timed
    runs does not hide the cost. `session` carries the bench token."""
    fresh = ServiceProcess("contacts_service", stack.contacts.env, workers=1).start(timeout=60)
    try:
        (worker,) = process_tree(fresh.process.pid)[1:]
        device = f"{fresh.url}/v1/devices/memory-{uuid.uuid4().hex[:8]}"
        for name in (device, device + "-warm-up"):
            expect(session.put(name, data=b"{}", headers=JSON, timeout=60), 200, 201)
        warm_up = encode({"upsert": book[:200]})
        expect(session.patch(f"{device}-warm-up/contacts", data=warm_up, headers=JSON), 200)
        body = encode({"upsert": book})
        figures = {}
        for name, send in (
            ("upload", lambda: session.patch(
                f"{device}/contacts", data=body, headers=JSON, timeout=900)),
            ("full_fetch", lambda: session.get(f"{device}/contacts", timeout=900)),
        ):  # fmt: skip
            before = status_mib(worker, "VmRSS")
            reset_peak_rss(worker)
            response = expect(send(), 200)
            size = (len(body) if name == "upload" else len(response.content)) / 2**20
            growth = status_mib(worker, "VmHWM") - before
            figures[name] = {"body_mib": size, "growth_mib": growth, "per_body": growth / size}
        for name in (device, device + "-warm-up"):
            session.delete(name, timeout=300)
        return figures
    finally:
        fresh.stop()
        fresh.log_path.unlink(missing_ok=True)
