"""Reads that stay consistent while writes land: the revision (hence the ETag), the contacts,
the deletions and Smart Contacts of one answer come from one snapshot, for books rendered whole
and for `?since=` (streamed books have their own test in test_streamed_fetch.py)."""

from __future__ import annotations

import threading
import time

from tests.support.clients import ContactsClient

DURATION = 3.0  # seconds of writes racing reads


def race(writer, reader) -> list:
    """Run `writer()` in a loop on a thread while `reader()` runs in a loop here; what the
    reader returned, for the assertions."""
    stop = threading.Event()
    failed: list[BaseException] = []

    def write_until_stopped():
        try:
            while not stop.is_set():
                writer()
        except BaseException as exc:  # reported on the test's thread below
            failed.append(exc)

    thread = threading.Thread(target=write_until_stopped)
    thread.start()
    seen = []
    try:
        until = time.monotonic() + DURATION
        while time.monotonic() < until:
            seen.append(reader())
    finally:
        stop.set()
        thread.join()
    if failed:
        raise failed[0]
    return seen


def test_a_whole_book_answer_has_the_contacts_of_its_revision(alice):
    # Every write sets contact x to the revision it makes: an answer whose revision says one
    # thing and whose contacts another would mean one ETag for two bodies.
    alice.register("race")
    writer = ContactsClient(alice.base_url, alice.token)
    state = {"revision": 0}

    def write():
        state["revision"] += 1
        marker = f"r{state['revision']}"
        others = [{"contactId": f"c{n}", "fname": marker} for n in range(30)]
        upsert = [{"contactId": "x", "fname": marker}, *others]
        response = writer.patch_contacts("race", upsert=upsert)
        assert response.status_code == 200 and response.json()["revision"] == state["revision"]

    def read():
        for params in ({}, {"since": 0}):
            body = alice.contacts("race", **params)
            fnames = {c["fname"] for c in body["contacts"]}
            if body["revision"]:
                assert fnames == {f"r{body['revision']}"}, (params, body["revision"], fnames)
        return body["revision"]

    revisions = race(write, read)
    assert len(set(revisions)) > 5  # the reads really did overlap many writes


def test_a_since_answer_never_lists_a_contact_as_both_changed_and_deleted(alice):
    alice.register("flip")
    alice.upsert("flip", [{"contactId": "keep"}])  # rev 1
    writer = ContactsClient(alice.base_url, alice.token)
    state = {"present": False}

    def write():
        if state["present"]:
            response = writer.patch_contacts("flip", delete=["c0"])
        else:
            response = writer.patch_contacts("flip", upsert=[{"contactId": "c0"}])
        assert response.status_code == 200
        state["present"] = not state["present"]

    def read():
        body = alice.contacts("flip", since=1)
        changed = {c["contactId"] for c in body["contacts"]}
        assert not changed & set(body["deleted"]), body
        return body["revision"]

    revisions = race(write, read)
    assert len(set(revisions)) > 5
