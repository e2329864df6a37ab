"""Persistence properties seen from inside: bulk statements, schema in sync with migrations,
and no database work before a token is validated."""

from __future__ import annotations

import contextlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event, text

from contacts_service.app import create_app
from contacts_service.extensions import db
from contacts_service.repository import pg_array
from tests.support.servers import free_port


@contextlib.contextmanager
def counting_statements(app):
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def book(size: int, tag: str) -> list[dict]:
    return [
        {
            "contactId": f"{tag}-{i}",
            "fname": tag,
            "contactEntries": [
                {"entryId": "1", "type": "tel", "uri": f"+1555{i:07d}"},
                {"entryId": "2", "type": "email", "uri": f"{i}@example.com"},
            ],
        }
        for i in range(size)
    ]


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_batch_is_a_constant_number_of_statements(app, client, new_account, method):
    headers = {"Authorization": f"Bearer {new_account(['+15550000000']).token}"}
    counts = []
    for size in (3, 300):
        device = f"bulk-{method}-{size}"
        assert client.put(f"/v1/devices/{device}", headers=headers).status_code == 201
        first = {"upsert": book(size, "a")} if method == "PATCH" else {"contacts": book(size, "a")}
        client.open(f"/v1/devices/{device}/contacts", method=method, json=first, headers=headers)
        # The measured batch: every contact changed, a third deleted (PATCH) or dropped (PUT).
        edited = book(size, "b")
        for contact in edited:
            contact["contactId"] = contact["contactId"].replace("b-", "a-")
        if method == "PATCH":
            body = {
                "upsert": edited[size // 3 :],
                "delete": [c["contactId"] for c in edited][: size // 3],
            }
        else:
            body = {"contacts": edited[size // 3 :]}
        with counting_statements(app) as statements:
            response = client.open(
                f"/v1/devices/{device}/contacts", method=method, json=body, headers=headers
            )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.get_json()["deleted"] == size // 3
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 16


def test_unchanged_contacts_are_not_rewritten(app, client, new_account, database):
    account = new_account()
    headers = {"Authorization": f"Bearer {account.token}"}
    client.put("/v1/devices/d", headers=headers)
    client.patch("/v1/devices/d/contacts", json={"upsert": book(50, "x")}, headers=headers)

    def row_versions() -> list[tuple]:
        # A rewritten row is a new row version: another xmin and ctid. (The table's update
        # counter is shared with every other test's server, whose statistics arrive late.)
        with database.cursor() as cursor:
            cursor.execute(
                "SELECT c.contact_id, c.xmin::text, c.ctid::text FROM contacts c "
                "JOIN devices d ON d.pk = c.device_pk JOIN accounts a ON a.id = d.account_id "
                "WHERE a.username = %s ORDER BY c.contact_id",
                (account.username,),
            )
            return cursor.fetchall()

    before = row_versions()
    assert len(before) == 50
    again = client.patch("/v1/devices/d/contacts", json={"upsert": book(50, "x")}, headers=headers)
    assert again.get_json()["unchanged"] == 50
    assert row_versions() == before


def test_models_and_migrations_agree(app):
    with app.app_context(), db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []


def test_no_database_work_before_a_token_is_validated(contacts_config):
    # The database is unreachable: a request without a valid token still gets its 401 (the
    # service never asked PostgreSQL), and a valid one gets 503 only once it needs data.
    config = {
        **contacts_config,
        "CONTACTS_DATABASE_URL": f"postgresql://nobody:x@127.0.0.1:{free_port()}/none",
    }
    app = create_app(config)
    try:
        with counting_statements(app) as statements:
            response = app.test_client().get(
                "/v1/devices", headers={"Authorization": "Bearer forged"}
            )
        assert response.status_code == 401
        assert statements == []
    finally:
        with app.app_context():
            db.engine.dispose()


def test_account_rows_are_written_only_when_introspection_changes(
    api, new_account, provider, sso_server, database
):
    from tests.contacts_service.conftest import relogin

    account = new_account(["+15551234567"], "sip:x@example.com")
    me = api.as_(account)

    def stored():
        with database.cursor() as cursor:
            cursor.execute(
                "SELECT a.updated_at, a.phone_numbers, array_agg(n.e164) FROM accounts a "
                "LEFT JOIN account_numbers n ON n.account_id = a.id "
                "WHERE a.cloud_id = %s AND a.username = %s GROUP BY a.id",
                (account.cloud_id, account.username),
            )
            return cursor.fetchone()

    me.get("/v1/devices")
    first = stored()
    assert first[1] == ["+15551234567"] and first[2] == ["+15551234567"]
    for _ in range(3):
        me.get("/v1/devices")
    assert stored() == first
    relogin(provider, sso_server, account, numbers=["+15557654321"])
    me.get("/v1/devices")
    changed = stored()
    assert changed[0] > first[0]
    assert changed[1] == ["+15557654321"] and changed[2] == ["+15557654321"]


@pytest.mark.parametrize(
    ("values", "cast"),
    [
        (["a", "b", "c"], "text[]"),
        (['say "hi"', "back\\slash", '\\"', "\\"], "text[]"),
        ([None, "NULL", "", "null"], "text[]"),
        (["", "", ""], "text[]"),
        (["zoë ☕ 太郎", "{,}", " spaced ", "a,b", "{}"], "text[]"),
        (['","', '"', "x"], "text[]"),
        ([1, 0, -7, 65535], "integer[]"),
        ([], "text[]"),
        ([], "integer[]"),
    ],
    ids=["plain", "quotes-and-backslashes", "nulls", "empty-strings", "syntax-characters",
         "joiner-inside-a-value", "integers", "empty-text", "empty-integers"],
)  # fmt: skip
def test_array_literals_read_back_as_the_values(app, values, cast):
    """pg_array's literal, cast in PostgreSQL, is exactly the list (the fast path for values
    with nothing to escape and the escaping path agree)."""
    with app.app_context():
        got = db.session.execute(
            text(f"SELECT CAST(:a AS {cast})"), {"a": pg_array(values)}
        ).scalar()
        db.session.rollback()
    assert got == values


def test_seen_number_slices_read_only_their_own_range(app, monkeypatch):
    # Each slice of record_seen_numbers must look at the account's rows within its own range:
    # hashing all of them (the plan while the statistics count a new account at one row) read
    # what the slices before had added again and again, quadratic in an upload's numbers.
    from contacts_service import repository

    monkeypatch.setattr(repository, "SEEN_SLICE", 100)
    numbers = [f"+1555{i:07d}" for i in range(3000)]
    with app.app_context():
        session = db.session
        highest = text("SELECT coalesce(max(account_id), 0) FROM smart_seen_numbers")
        account = session.execute(highest).scalar() + 1_000_000  # statistics say "few rows"
        session.execute(
            text(
                "INSERT INTO smart_seen_numbers (account_id, e164) "
                "SELECT :a + g % 20 + 1, '+1666' || g FROM generate_series(1, 20000) g"
            ),
            {"a": account},
        )
        session.commit()
        session.execute(text("ANALYZE smart_seen_numbers"))
        session.commit()
        read = text(
            "SELECT coalesce(sum(idx_tup_fetch), 0) + coalesce(sum(seq_tup_read), 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = 'smart_seen_numbers'"
        )
        try:
            before = session.execute(read).scalar()
            repository.record_seen_numbers(account, numbers, per_day=100)
            rows_read = session.execute(read).scalar() - before
            added = session.execute(
                text("SELECT count(*) FROM smart_seen_numbers WHERE account_id = :a"),
                {"a": account},
            ).scalar()
        finally:
            session.rollback()
    assert added == len(numbers)
    # Within their ranges the slices find almost nothing; all rows each time would be ≈ 45,000.
    assert rows_read < 2 * len(numbers), rows_read
