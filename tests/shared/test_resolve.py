"""shared.resolve: name resolution within a deadline, a thread per lookup, a cap on pending ones."""

from __future__ import annotations

import socket
import threading

import pytest

from shared.resolve import LookupBacklog, Unresolved, resolve_within


def slots(count: int = 4) -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(count)


def hanging(release: threading.Event):
    def resolver(host, port):
        release.wait(10)
        return [(socket.AF_INET, ("127.0.0.1", port))]

    return resolver


def test_a_name_resolves_to_family_and_sockaddr_pairs():
    addresses = resolve_within("localhost", 8080, 5, slots=slots())
    assert addresses
    for family, sockaddr in addresses:
        assert family in (socket.AF_INET, socket.AF_INET6)
        assert sockaddr[1] == 8080


def test_an_ip_address_is_its_own_answer():
    def resolver(host, port):
        raise AssertionError("an address is not looked up")

    assert resolve_within("127.0.0.1", 80, 1, slots=slots(), resolver=resolver) == [
        (socket.AF_INET, ("127.0.0.1", 80))
    ]
    assert resolve_within("::1", 443, 1, slots=slots(), resolver=resolver) == [
        (socket.AF_INET6, ("::1", 443, 0, 0))
    ]


def test_a_hanging_lookup_ends_at_the_deadline_in_a_daemon_thread():
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            resolve_within(
                "hung.test", 80, 0.2, slots=slots(), resolver=hanging(release), thread_name="t-dns"
            )
        (left,) = [t for t in threading.enumerate() if t.name == "t-dns"]
        assert left.daemon
    finally:
        release.set()


def test_a_failing_lookup_is_unresolved():
    def resolver(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(Unresolved) as caught:
        resolve_within("missing.test", 80, 5, slots=slots(), resolver=resolver)
    assert isinstance(caught.value.__cause__, socket.gaierror)


def test_a_name_idna_cannot_encode_is_unresolved():
    with pytest.raises(Unresolved) as caught:
        resolve_within("a" * 64 + ".test", 80, 5, slots=slots())
    assert isinstance(caught.value.__cause__, UnicodeError)


def test_an_empty_answer_is_unresolved():
    with pytest.raises(Unresolved):
        resolve_within("empty.test", 80, 5, slots=slots(), resolver=lambda host, port: [])


def test_a_resolver_bug_is_raised_as_it_is():
    def resolver(host, port):
        raise KeyError(host)

    with pytest.raises(KeyError):
        resolve_within("bug.test", 80, 5, slots=slots(), resolver=resolver)


def test_no_lookup_starts_while_the_cap_is_taken_and_a_slot_frees_when_it_ends():
    cap = slots(1)
    release = threading.Event()
    try:
        with pytest.raises(TimeoutError):
            resolve_within("hung.test", 80, 0.1, slots=cap, resolver=hanging(release))
        with pytest.raises(LookupBacklog):
            resolve_within("other.test", 80, 5, slots=cap, resolver=hanging(release))
    finally:
        release.set()
    assert cap.acquire(timeout=10)  # the hung lookup gave its slot back when it ended
    cap.release()
    answer = resolve_within("other.test", 80, 5, slots=cap, resolver=lambda host, port: [(2, ())])
    assert answer == [(2, ())]
