"""The Flask extensions, created unbound so nothing happens at import time.

Flask-Migrate (and alembic, mako, pygments with it: ≈ 11 MiB per process) is not here: only
migrations need it, so contacts_service.app.init_migrations loads it when they run.
"""

from __future__ import annotations

from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()
