"""Flask extensions and the per-app service state, created unbound so nothing happens at import
time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

if TYPE_CHECKING:
    from contacts_service.schemas import PatchContactsSchema, PutContactsSchema
    from contacts_service.service import Limits
    from contacts_service.settings import Settings
    from contacts_service.sso_client import SsoClient

db = SQLAlchemy()
migrate = Migrate()


@dataclass(frozen=True)
class ServiceState:
    """What the views need from configuration, built once per app (so once per worker)."""

    settings: Settings
    sso: SsoClient
    limits: Limits
    patch_schema: PatchContactsSchema
    put_schema: PutContactsSchema


def service_state() -> ServiceState:
    return current_app.extensions["contacts_service"]
