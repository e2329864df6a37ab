"""The private PostgreSQL cluster the fault tests stop and restart."""

from __future__ import annotations

import psycopg2
import pytest

from tests.support.pg_cluster import PostgresCluster


def _select_one(url: str) -> int:
    connection = psycopg2.connect(url, connect_timeout=3)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def test_cluster_serves_a_role_and_database_and_survives_restart():
    cluster = PostgresCluster(role="faulty", database="faulty")
    try:
        cluster.start()
        url = cluster.create_database()
        assert url == cluster.url
        assert _select_one(url) == 1

        cluster.stop()
        assert not cluster.running()
        with pytest.raises(psycopg2.OperationalError):
            _select_one(url)

        cluster.start()
        assert _select_one(url) == 1
        cluster.restart()
        assert _select_one(url) == 1
    finally:
        cluster.close()
    assert not cluster.base.exists()
