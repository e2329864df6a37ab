"""The Contacts service: per-device address books with checksum sync, incremental fetch and
Smart Contacts, on PostgreSQL. WSGI factory: `contacts_service:create_app`."""

from __future__ import annotations


def create_app(config=None):
    """The WSGI app (see contacts_service.app.create_app).

    Imported lazily: `python -m contacts_service serve` imports this package in the gunicorn
    master, which must not load the Prometheus metrics before they are set up for multiprocess.
    """
    from contacts_service.app import create_app as factory

    return factory(config)


__all__ = ["create_app"]
