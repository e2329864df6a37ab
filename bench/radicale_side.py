"""The CardDAV side of the benchmark: a real Radicale server and the same sync scenario over it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from bench.data import Changes, to_vcard, to_vcards
from bench.measure import CountingSession, Step, expect
from tests.support.servers import free_port, stop_process, wait_for

VCARD = "text/vcard; charset=utf-8"
XML = "application/xml; charset=utf-8"
USER = "bench"

PROPFIND_ETAGS = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
)
PROPFIND_SYNC_TOKEN = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:sync-token/></d:prop></d:propfind>'
)
SYNC_COLLECTION = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:sync-collection xmlns:d="DAV:"><d:sync-token>{token}</d:sync-token>'
    "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
)
MULTIGET = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<c:addressbook-multiget xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav">'
    "<d:prop><d:getetag/><c:address-data/></d:prop>{hrefs}</c:addressbook-multiget>"
)
_TOKEN = re.compile(r"<(?:\w+:)?sync-token>([^<]+)</(?:\w+:)?sync-token>")
# One <response> of a sync-collection answer: its href, and whether it still exists (a
# deleted member answers with a 404 status and no properties).
_RESPONSE = re.compile(r"<(?:\w+:)?response>(.*?)</(?:\w+:)?response>", re.S)
_HREF = re.compile(r"<(?:\w+:)?href>([^<]+)</(?:\w+:)?href>")


class RadicaleServer:
    """`python -m radicale` on a free loopback port with a throwaway storage folder.

    Defaults except what a benchmark needs: `auth type = none` (any Basic login is that user,
    so no password hashing is timed), no web UI, logging at warning.
    """

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="cs-bench-radicale-"))
        self.log_path = self.dir / "radicale.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RadicaleServer:
        config = self.dir / "config"
        config.write_text(
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "[auth]\ntype = none\n"
            "[rights]\ntype = owner_only\n"
            f"[storage]\nfilesystem_folder = {self.dir / 'collections'}\n"
            "[web]\ntype = none\n"
            "[logging]\nlevel = warning\n"
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "radicale", "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def answering():
            if self.process.poll() is not None:
                raise RuntimeError(f"radicale exited:\n{self.log_path.read_text()}")
            session = CountingSession()
            return session.options(self.url + "/", auth=(USER, "x"), timeout=1).status_code < 500

        wait_for(answering, timeout=20, what="radicale")
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def close(self, keep_logs: bool = False) -> None:
        self.stop()
        if keep_logs:
            kept = Path(tempfile.mkstemp(prefix="cs-bench-radicale-", suffix=".log")[1])
            shutil.copyfile(self.log_path, kept)
            print(f"radicale log: {kept}", file=sys.stderr)
        shutil.rmtree(self.dir, ignore_errors=True)


class RadicaleRun:
    """One run of the scenario on a fresh address book collection."""

    def __init__(self, server: RadicaleServer, session: CountingSession, version: str = "3.0"):
        self.session = session
        self.session.auth = (USER, "x")
        self.version = version
        self.collection = f"{server.url}/{USER}/book-{uuid.uuid4().hex[:12]}/"
        self.token: str | None = None
        self.token_before_changes: str | None = None

    def _card_url(self, contact_id: str) -> str:
        # A whole-collection PUT stores each card as "<UID>.vcf" (UIDs here are filename-safe).
        return f"{self.collection}{contact_id}.vcf"

    def _sync_report(self, token: str) -> str:
        return _TOKEN.search(self._sync_answer(token)).group(1)

    def _sync_answer(self, token: str) -> str:
        response = expect(
            self.session.request(
                "REPORT",
                self.collection,
                data=SYNC_COLLECTION.format(token=token).encode(),
                headers={"Content-Type": XML, "Depth": "0"},
                timeout=600,
            ),
            207,
        )
        return response.text

    def initial_upload(self, book: list[dict]) -> Step:
        """The whole book as one vCard file PUT to the collection URL (creates it)."""
        body = to_vcards(book, self.version).encode()
        with Step(self.session) as step:
            expect(
                self.session.put(
                    self.collection, data=body, headers={"Content-Type": VCARD}, timeout=900
                ),
                201,
            )
        return step

    def checksum_listing(self, count: int) -> Step:
        """PROPFIND Depth: 1 for every card's getetag."""
        with Step(self.session) as step:
            response = expect(
                self.session.request(
                    "PROPFIND",
                    self.collection,
                    data=PROPFIND_ETAGS.encode(),
                    headers={"Content-Type": XML, "Depth": "1"},
                    timeout=600,
                ),
                207,
            )
        listed = response.text.count("getetag>") // 2 - 1  # the collection has none
        if listed < count:
            raise RuntimeError(f"PROPFIND listed {listed} etags, expected {count}")
        return step

    def remember_sync_token(self) -> None:
        """What a CardDAV client holds after its last sync (not timed)."""
        response = expect(
            self.session.request(
                "PROPFIND",
                self.collection,
                data=PROPFIND_SYNC_TOKEN.encode(),
                headers={"Content-Type": XML, "Depth": "0"},
                timeout=300,
            ),
            207,
        )
        self.token = _TOKEN.search(response.text).group(1)

    def incremental_sync(self, changes: Changes) -> tuple[Step, Step]:
        """PUT each edited/new card, DELETE each removed one, then sync-collection REPORT.

        Returns the whole step and, separately, the REPORT alone.
        """
        with Step(self.session) as step:
            for contact in changes.edited + changes.added:
                expect(
                    self.session.put(
                        self._card_url(contact["contactId"]),
                        data=to_vcard(contact, self.version).encode(),
                        headers={"Content-Type": VCARD},
                        timeout=300,
                    ),
                    201,
                    204,
                )
            for contact_id in changes.deleted:
                expect(self.session.delete(self._card_url(contact_id), timeout=300), 200, 204)
            with Step(self.session) as report:
                self.token_before_changes, self.token = self.token, self._sync_report(self.token)
        return step, report

    def changes_since(self, changes: Changes) -> Step:
        """What another client that synced before the changes reads: the sync-collection
        REPORT from its token (hrefs and ETags only), then one addressbook-multiget of the
        changed and new cards (RFC 6352 8.7) — the cards themselves, as `?since` returns them."""
        with Step(self.session) as step:
            answer = self._sync_answer(self.token_before_changes)
            hrefs = [
                _HREF.search(member).group(1)
                for member in _RESPONSE.findall(answer)
                if " 404 " not in member and _HREF.search(member)
            ]
            response = expect(
                self.session.request(
                    "REPORT",
                    self.collection,
                    data=MULTIGET.format(
                        hrefs="".join(f"<d:href>{href}</d:href>" for href in hrefs)
                    ).encode(),
                    headers={"Content-Type": XML, "Depth": "1"},
                    timeout=600,
                ),
                207,
            )
        cards = response.text.count("BEGIN:VCARD")
        if cards != len(changes.edited) + len(changes.added):
            raise RuntimeError(f"multiget returned {cards} cards, expected the changed ones")
        return step

    def full_fetch(self, count: int) -> Step:
        """GET of the collection: every card as one vCard file."""
        with Step(self.session) as step:
            response = expect(self.session.get(self.collection, timeout=600), 200)
        cards = response.content.count(b"BEGIN:VCARD")
        if cards != count:
            raise RuntimeError(f"GET collection returned {cards} cards, expected {count}")
        return step

    def unchanged_refetch(self) -> Step:
        """sync-collection REPORT with the latest token: nothing changed."""
        with Step(self.session) as step:
            self._sync_report(self.token)
        return step

    def drop(self) -> None:
        """Delete the collection (not timed)."""
        self.session.delete(self.collection, timeout=600)
