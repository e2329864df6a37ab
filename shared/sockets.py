"""One question both services ask of an idle pooled connection before reusing it."""

from __future__ import annotations

import select


def readable_now(fileobj) -> bool:
    """Whether reading would not block right now, without waiting: bytes have arrived, or the
    peer closed or reset the connection (a FIN or a reset makes a socket readable too,
    POLLHUP/POLLERR/POLLNVAL as well), or it is no longer a valid descriptor. On an idle
    connection, where nothing was asked for, any of these means it must not carry another
    request as it is. `fileobj`: a socket or a file descriptor."""
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fileobj, select.POLLIN | select.POLLPRI)
            return bool(poller.poll(0))
        return bool(select.select([fileobj], [], [], 0)[0])
    except (OSError, ValueError):  # closed, or no longer a valid descriptor
        return True
