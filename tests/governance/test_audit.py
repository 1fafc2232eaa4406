import sqlite3
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from safecity.db import make_engine, upgrade
from safecity.governance.audit import GENESIS, AuditLog, record_hash


@pytest.fixture
def audit(store_url):
    engine = make_engine(store_url)
    upgrade(engine)
    yield AuditLog(engine)
    engine.dispose()


def fill(audit: AuditLog, n: int = 5) -> None:
    for i in range(1, n + 1):
        audit.append("alice", "event.view", "event", i, reason=f"case {i}", details={"n": i})


def test_chain_links_each_record_to_the_one_before(audit):
    fill(audit)
    records = list(audit.records())
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS
    for before, after in zip(records, records[1:]):
        assert after.prev_hash == before.hash
    fields = {k: getattr(records[2], k) for k in ("seq", "ts", "actor", "action", "object_type", "object_id")}
    fields |= {"reason": "case 3", "details": records[2].details, "prev_hash": records[1].hash}
    assert record_hash(fields) == records[2].hash
    assert audit.verify().ok and audit.verify().records == 5


def test_database_refuses_update_and_delete(audit):
    fill(audit, 2)
    for statement in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log WHERE seq = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            with audit.engine.begin() as connection:
                connection.execute(text(statement))
    assert audit.verify().ok


def test_concurrent_appends_keep_one_chain(audit):
    threads = [threading.Thread(target=fill, args=(audit, 10)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = audit.verify()
    assert result.ok and result.records == 40


def tamper(audit: AuditLog, *statements: str) -> None:
    """What an attacker with database access does: lift the guard, then edit."""
    with audit.engine.begin() as connection:
        if audit.engine.dialect.name == "sqlite":
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        else:
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        for statement in statements:
            connection.exec_driver_sql(statement)


@pytest.mark.parametrize(
    "statements, bad_seq, words",
    [
        (["UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 3"], 3, "edited"),
        (["UPDATE audit_log SET details = '{\"n\":99}' WHERE seq = 4"], 4, "edited"),
        (["DELETE FROM audit_log WHERE seq = 3"], 3, "missing"),
        (
            # swap the contents of records 2 and 3, keeping their sequence numbers
            [
                "UPDATE audit_log SET seq = 100 WHERE seq = 2",
                "UPDATE audit_log SET seq = 2 WHERE seq = 3",
                "UPDATE audit_log SET seq = 3 WHERE seq = 100",
            ],
            2,
            "does not follow",
        ),
        (["DELETE FROM audit_log WHERE seq = 1", "UPDATE audit_log SET seq = seq - 1"], 1, "does not follow"),
    ],
)
def test_tampering_is_found_at_the_first_bad_record(audit, statements, bad_seq, words):
    fill(audit)
    tamper(audit, *statements)
    result = audit.verify()
    assert not result.ok
    assert result.first_bad_seq == bad_seq
    assert words in result.problem


def test_rehashing_an_edited_record_still_breaks_the_next_link(audit):
    fill(audit)
    record = list(audit.records())[1]
    fields = {k: getattr(record, k) for k in ("seq", "ts", "actor", "action", "object_type", "object_id", "details")}
    fields |= {"reason": "forged", "prev_hash": record.prev_hash}
    forged = record_hash(fields)
    tamper(audit, f"UPDATE audit_log SET reason = 'forged', hash = '{forged}' WHERE seq = 2")
    result = audit.verify()
    assert not result.ok and result.first_bad_seq == 3


def test_cli_verify_fails_on_a_tampered_sqlite_log(tmp_path):
    from typer.testing import CliRunner

    from safecity.cli import app

    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = make_engine(url)
    upgrade(engine)
    fill(AuditLog(engine))
    engine.dispose()
    runner = CliRunner()
    ok = runner.invoke(app, ["audit", "verify", "--store", url])
    assert ok.exit_code == 0 and "5 records" in ok.output

    raw = sqlite3.connect(tmp_path / "a.db")
    raw.execute("DROP TRIGGER audit_log_no_update")
    raw.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    raw.commit()
    raw.close()
    bad = runner.invoke(app, ["audit", "verify", "--store", url])
    assert bad.exit_code == 1
    assert "record 2" in bad.output and "Traceback" not in bad.output
