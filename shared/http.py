"""The outbound HTTP client: one pooled requests.Session per process, explicit timeouts.

Retries are off on purpose: a login must not hit a provider's ext-auth twice, and the Contacts
service decides itself what an unreachable SSO means.
"""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy

import requests
from requests.adapters import HTTPAdapter


class _NoCookies(DefaultCookiePolicy):
    """Store no cookie and send none: calls made for one request must carry nothing of
    another's (a session cookie would otherwise travel to every later call)."""

    def set_ok(self, cookie, request):
        return False

    def return_ok(self, cookie, request):
        return False


def make_session(
    pool_size: int = 32, user_agent: str = "contact-sync", verify: bool | str = True
) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = user_agent
    session.cookies.set_policy(_NoCookies())
    session.verify = verify
    # Proxies from the environment would silently reroute calls to the provider or the SSO.
    session.trust_env = False
    return session
