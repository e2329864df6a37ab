"""One blueprint per resource: tokens (login), introspection, revocation; and the operators'
admin routes."""

from __future__ import annotations

from flask import Flask

from sso_service.views import admin, introspection, revocation, tokens


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(tokens.blueprint)
    app.register_blueprint(introspection.blueprint)
    app.register_blueprint(revocation.blueprint)
    admin.init_app(app)
