"""The audit log (全过程留痕): every change traced by the database, append-only for everyone,
and the web app's own role can neither rewrite it nor switch its guards off."""

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from api.app import create_app
from geo.core.settings import Settings
from tests.conftest import add_people, app_role, sign_in


@pytest.fixture(scope="module")
def db(demo_database, cluster):
    """A database of this module's own (its edits and probes touch nobody else's): the owner's
    engine, the app role's, and the people's ids."""
    with demo_database("audit") as owner:
        ids = add_people(owner, neighbours=False)
        app_db = app_role(cluster, owner)
        yield owner, app_db, ids
        app_db.dispose()


@pytest.fixture(scope="module")
def engine(db):
    return db[0]


@pytest.fixture(scope="module")
def app_engine(db):
    return db[1]


@pytest.fixture(scope="module")
def people(db):
    return db[2]


def _last_audit(engine, kind: str, object_id: str) -> dict:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT * FROM audit_log WHERE object_kind = :k AND object_id = :i "
                    "ORDER BY id DESC LIMIT 1"
                ),
                {"k": kind, "i": object_id},
            )
            .mappings()
            .first()
        )
    assert row is not None, f"no audit row for {kind} {object_id}"
    return dict(row)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
        "ALTER TABLE audit_log DISABLE TRIGGER append_only",
        "DROP TABLE audit_log",
        "DROP TRIGGER audit ON ledger_entry",
        "SET session_replication_role = replica",
    ],
)
def test_the_app_role_cannot_rewrite_the_trace_or_turn_it_off(app_engine, statement):
    with app_engine.connect() as conn:
        conn.execute(text("INSERT INTO audit_log (actor, object_kind, action) "
                          "VALUES ('test', 'probe', 'probe')"))  # fmt: skip
        with pytest.raises(DBAPIError) as refused:
            conn.execute(text(statement))
        assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege), refused.value


def test_even_the_owner_cannot_update_or_delete_it(engine):
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO audit_log (actor, object_kind, action) "
                          "VALUES ('test', 'probe', 'probe')"))  # fmt: skip
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log",
                          "TRUNCATE audit_log"):  # fmt: skip
            with pytest.raises(ProgrammingError, match="append-only"):
                with conn.begin_nested():
                    conn.execute(text(statement))


def test_the_app_role_reads_and_writes_rows_but_not_tables(app_engine):
    with app_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM compound")).scalar() > 0
        superuser = text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        assert not conn.execute(superuser).scalar()
        with pytest.raises(ProgrammingError):
            conn.execute(text("CREATE TABLE not_allowed (x int)"))


def test_an_edit_on_the_map_is_traced_with_who_department_address_before_and_after(
    app_engine, engine, people, demo
):
    client = TestClient(create_app(Settings(), app_engine))
    csrf = sign_in(client, "住建局张三")
    ledger = demo.ledger
    row = ledger[(ledger.lead_department == "住建局") & (ledger.status != "closed")].iloc[0]
    entry = client.get(f"/api/ledger/{row.compound_code}").json()
    response = client.patch(
        f"/api/ledger/{row.compound_code}",
        json={"version": entry["version"], "changes": {"plan": "证缴分离：先登记后补缴"}},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200, response.text
    with engine.connect() as conn:
        entry_id = conn.execute(
            text(
                "SELECT e.id FROM ledger_entry e JOIN compound c ON c.id = e.compound_id "
                "WHERE c.code = :code AND e.county_code = '629901'"
            ),
            {"code": row.compound_code},
        ).scalar_one()
    trace = _last_audit(engine, "ledger_entry", str(entry_id))
    assert trace["actor"] == "住建局张三" and trace["department"] == "住建局"
    assert trace["address"] == "testclient" and trace["county_code"] == "629901"
    assert trace["action"] == "update"
    assert trace["after"] == {"plan": "证缴分离：先登记后补缴"}
    assert trace["before"] == {"plan": entry["plan"]}


def test_a_sign_in_is_traced(app_engine, engine, people):
    client = TestClient(create_app(Settings(), app_engine))
    sign_in(client, "查看员")
    trace = _last_audit(engine, "app_user", str(people["查看员"]))
    assert trace["action"] == "sign_in" and trace["actor"] == "查看员"
