"""A few threads per worker process for work that runs beside a request's own thread: an
upload's phone numbers while PostgreSQL stores its documents (address_book), and the
compression of its documents while the rest of the body is parsed (upload). Both call into C
code that lets go of the GIL (psycopg2's waits, zlib), so on a machine with a second CPU the
two really overlap."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def helper_threads() -> ThreadPoolExecutor:
    """The worker's pool, made on first use: in the worker process, never before the fork."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="helper")
        return _pool
