"""Logins of this worker waiting on providers (portal and ext-auth) at once: a bounded number
in all, and fewer for any one Cloud ID.

The total keeps slow providers from holding the threads introspection needs. The per-cloud
bound is a bulkhead: a provider whose ext-auth hangs (or slows wrong passwords down on
purpose) fills at most its own share, and logins to every other Cloud ID of the server still
find slots. Counted per worker process, like the threads they protect. Cloud IDs are grouped
case-insensitively (NFKC, casefolded), so spelling one differently buys no extra share from a
portal that does not care about case.
"""

from __future__ import annotations

import threading
import unicodedata
from collections import Counter


class LoginSlots:
    def __init__(self, total: int, per_cloud: int):
        self.total = total
        self.per_cloud = min(per_cloud, total)
        self._lock = threading.Lock()
        self._in_use = 0
        self._by_cloud: Counter[str] = Counter()

    @staticmethod
    def _key(cloud_id: str) -> str:
        return unicodedata.normalize("NFKC", cloud_id).casefold()

    def acquire(self, cloud_id: str) -> str | None:
        """Take a slot: None when taken, else why not ("total" or "cloud")."""
        key = self._key(cloud_id)
        with self._lock:
            if self._in_use >= self.total:
                return "total"
            if self._by_cloud[key] >= self.per_cloud:
                return "cloud"
            self._in_use += 1
            self._by_cloud[key] += 1
        return None

    def release(self, cloud_id: str) -> None:
        key = self._key(cloud_id)
        with self._lock:
            self._in_use -= 1
            self._by_cloud[key] -= 1
            if not self._by_cloud[key]:
                del self._by_cloud[key]  # the Counter holds only clouds with logins waiting
