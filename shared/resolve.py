"""Name resolution within a deadline, for the connections both services open (the Contacts
service to the SSO, the SSO to a provider's side).

getaddrinfo has no timeout of its own, so each lookup runs in a daemon thread of its own and the
caller stops waiting at its deadline; a lookup that hangs is left behind, never joined. One
thread per lookup, not a small shared pool: a name whose DNS hangs would otherwise fill the
pool and time out the lookups of every other name. Each caller brings its own cap on pending
lookups, which only bounds the threads left behind by lookups that hang, so one client's hung
lookups never take another's.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable

Resolver = Callable[[str, int], list[tuple[int, tuple]]]


class LookupBacklog(Exception):
    """As many lookups as the cap allows are pending (hanging, most likely): none was started."""


class Unresolved(Exception):
    """The resolver failed (the cause, when there is one) or answered no address."""


def system_resolver(host: str, port: int) -> list[tuple[int, tuple]]:
    """(family, sockaddr) pairs for host, as the system resolver gives them."""
    return [
        (family, sockaddr)
        for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    ]


def resolve_within(
    host: str,
    port: int,
    timeout: float,
    *,
    slots: threading.Semaphore,
    resolver: Resolver = system_resolver,
    thread_name: str = "dns",
) -> list[tuple[int, tuple]]:
    """The (family, sockaddr) pairs of `host`, waiting at most `timeout` seconds for them.

    An IP address is its own answer (no thread, no resolver). Otherwise the lookup takes one of
    `slots` until it ends, and raises TimeoutError when the deadline passes first,
    LookupBacklog when no slot is free, and Unresolved when the resolver raises OSError or
    UnicodeError (an IDNA label that cannot be encoded) or answers nothing. Anything else the
    resolver raises is raised here as it is: a bug, not a name that does not resolve.
    """
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if literal.version == 6:
            return [(socket.AF_INET6, (host, port, 0, 0))]
        return [(socket.AF_INET, (host, port))]
    if not slots.acquire(blocking=False):
        raise LookupBacklog(host)
    done = threading.Event()
    outcome: dict = {}

    def lookup():
        try:
            outcome["addresses"] = resolver(host, port)
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc
        finally:
            slots.release()
            done.set()

    threading.Thread(target=lookup, name=thread_name, daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError("name resolution timed out")
    error = outcome.get("error")
    if isinstance(error, OSError | UnicodeError):
        raise Unresolved(host) from error
    if error is not None:
        raise error
    if not outcome["addresses"]:
        raise Unresolved(host)
    return outcome["addresses"]
