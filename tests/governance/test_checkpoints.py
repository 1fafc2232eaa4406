import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from safecity.db import make_engine, upgrade
from safecity.governance.audit import AuditLog
from safecity.governance.checkpoints import (
    checkpoints,
    create_checkpoint,
    export_jsonl,
    load_or_create_key,
    public_hex,
    verify_export,
    verify_with_checkpoints,
)
from tests.governance.test_audit import fill, tamper


@pytest.fixture
def log(store_url):
    engine = make_engine(store_url)
    upgrade(engine)
    yield AuditLog(engine)
    engine.dispose()


def check(log: AuditLog, trusted=None):
    marks = [c.as_dict() for c in checkpoints(log.engine)]
    return verify_with_checkpoints((r.stored() for r in log.records()), marks, trusted)


def test_key_is_created_once_and_private(tmp_path):
    key = load_or_create_key(tmp_path / "keys")
    assert (tmp_path / "keys" / "audit-ed25519.pem").stat().st_mode & 0o777 == 0o600
    assert public_hex(load_or_create_key(tmp_path / "keys")) == public_hex(key)


def test_truncating_checkpointed_records_is_detected(log, tmp_path):
    key = load_or_create_key(tmp_path)
    fill(log, 5)
    assert create_checkpoint(log.engine, key).seq == 5
    assert create_checkpoint(log.engine, key) is None  # nothing new
    fill(log, 2)
    assert check(log, {public_hex(key)}).ok
    # the chain of records 1..4 is still perfect, but the signed head is gone
    tamper(log, "DELETE FROM audit_log WHERE seq >= 5")
    assert log.verify().ok
    result = check(log, {public_hex(key)})
    assert not result.ok and result.first_bad_seq == 5 and "truncated" in result.problem


def test_a_checkpoint_signed_by_another_key_is_refused(log, tmp_path):
    fill(log, 3)
    create_checkpoint(log.engine, Ed25519PrivateKey.generate())
    installed = load_or_create_key(tmp_path)
    assert check(log).ok  # any valid signature is accepted without a pinned key
    result = check(log, {public_hex(installed)})
    assert not result.ok and "unknown key" in result.problem


def test_forged_checkpoint_signature_is_refused(log, tmp_path):
    key = load_or_create_key(tmp_path)
    fill(log, 3)
    create_checkpoint(log.engine, key)
    marks = [c.as_dict() for c in checkpoints(log.engine)]
    marks[0]["ts"] = "2020-01-01T00:00:00+00:00"
    result = verify_with_checkpoints((r.stored() for r in log.records()), marks, {public_hex(key)})
    assert not result.ok and "invalid signature" in result.problem


def test_export_verifies_offline_and_tampering_is_found(log, tmp_path):
    key = load_or_create_key(tmp_path / "keys")
    fill(log, 4)
    create_checkpoint(log.engine, key)
    target = tmp_path / "audit.jsonl"
    manifest = export_jsonl(log.engine, target, "cli:auditor", "regulator request")
    assert manifest["records"] == 5 and manifest["last_seq"] == 5  # the export audits itself first
    lines = target.read_text().splitlines()
    assert json.loads(lines[-1])["action"] == "audit.export"
    assert verify_export(target, {public_hex(key)}).ok

    edited = json.loads(lines[1])
    edited["actor"] = "someone else"
    lines[1] = json.dumps(edited, sort_keys=True, separators=(",", ":"))
    target.write_text("\n".join(lines) + "\n")
    assert "does not match the hash" in verify_export(target).problem
    manifest_path = tmp_path / "audit.jsonl.manifest.json"
    data = json.loads(manifest_path.read_text())
    import hashlib

    data["sha256"] = hashlib.sha256(target.read_bytes()).hexdigest()  # a forger fixes the manifest too
    manifest_path.write_text(json.dumps(data))
    result = verify_export(target)
    assert not result.ok and result.first_bad_seq == 2
