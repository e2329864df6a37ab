"""The Contacts service's per-app state: its settings and the collaborators built from them,
once per app (so once per worker), reached through current_app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from contacts_service.settings import Settings
from contacts_service.sso_client import SsoClient

_EXTENSION = "contacts_service"


@dataclass(frozen=True)
class AppState:
    settings: Settings
    sso: SsoClient

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        return cls(
            settings=settings,
            sso=SsoClient(
                settings.sso_url,
                settings.sso_client_id,
                settings.sso_client_secret,
                timeout=settings.sso_timeout_seconds,
                ca_bundle=settings.sso_ca_bundle,
                cache_seconds=settings.introspection_cache_seconds,
            ),
        )


def init_app_state(app: Flask, settings: Settings) -> AppState:
    """Build the state from `settings` and attach it to `app`."""
    app.extensions[_EXTENSION] = state = AppState.build(settings)
    return state


def app_state(app: Flask | None = None) -> AppState:
    """The state of `app` (the current app when None)."""
    return (app or current_app).extensions[_EXTENSION]
