"""shared.sockets.readable_now: the check both services make before reusing an idle pooled
connection (the SSO client's keep-alive sockets, Contacts' PostgreSQL connections)."""

from __future__ import annotations

import socket

import pytest

from shared.sockets import readable_now


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_an_idle_connection_with_nothing_on_it_is_not_readable(pair):
    ours, _ = pair
    assert readable_now(ours) is False
    assert readable_now(ours.fileno()) is False


@pytest.mark.parametrize(
    "peer",
    [
        pytest.param(lambda sock: sock.sendall(b"E"), id="bytes nobody asked for"),
        pytest.param(lambda sock: sock.shutdown(socket.SHUT_WR), id="the peer's close"),
        pytest.param(lambda sock: sock.close(), id="the peer gone"),
    ],
)
def test_anything_from_the_peer_makes_it_readable(pair, peer):
    ours, theirs = pair
    peer(theirs)
    assert readable_now(ours) is True


def test_a_closed_descriptor_counts_as_readable(pair):
    ours, _ = pair
    ours.close()
    assert readable_now(ours) is True
