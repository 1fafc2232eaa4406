"""Signed checkpoints: the head of the audit chain, signed with an Ed25519 key.

The hash chain shows that records were edited, removed or reordered, but someone
with write access could truncate the newest records or rebuild the whole chain. A
checkpoint signs (seq, hash, time) of the chain's head with a key created at install
and kept outside the database; verification then proves that every checkpointed
record still exists unchanged. Only the public key is needed to verify, so an export
can be checked by a regulator who never sees the private key.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Engine, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from safecity.db import Base, sqlite_path
from safecity.governance.audit import AuditLog, Verification, verify_chain

KEY_FILE = "audit-ed25519.pem"


class Checkpoint(Base):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[str] = mapped_column(String(40))
    public_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(String(128))

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("seq", "hash", "ts", "public_key", "signature")}


def _message(seq: int, hash_: str, ts: str) -> bytes:
    return json.dumps({"seq": seq, "hash": hash_, "ts": ts}, sort_keys=True, separators=(",", ":")).encode()


def public_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def load_or_create_key(directory: Path) -> Ed25519PrivateKey:
    """The installation's signing key; created once, readable by its owner only."""
    path = directory / KEY_FILE
    if path.is_file():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 key")
        return key
    directory.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    (directory / (KEY_FILE + ".pub")).write_text(public_hex(key) + "\n")
    return key


def create_checkpoint(engine: Engine, key: Ed25519PrivateKey) -> Checkpoint | None:
    """Sign the current head of the chain (None if the log is empty or unchanged)."""
    head = AuditLog(engine).tail(1)
    if not head:
        return None
    record = head[0]
    with Session(engine, expire_on_commit=False) as session, session.begin():
        last = session.scalar(select(Checkpoint).order_by(Checkpoint.id.desc()).limit(1))
        if last is not None and last.seq == record.seq:
            return None
        ts = datetime.now(timezone.utc).isoformat(timespec="seconds")
        checkpoint = Checkpoint(
            seq=record.seq, hash=record.hash, ts=ts, public_key=public_hex(key),
            signature=key.sign(_message(record.seq, record.hash, ts)).hex(),
        )
        session.add(checkpoint)
    return checkpoint


def checkpoints(engine: Engine) -> list[Checkpoint]:
    with Session(engine) as session:
        return list(session.scalars(select(Checkpoint).order_by(Checkpoint.id)))


def verify_with_checkpoints(
    records: Iterable[Mapping], marks: Iterable[Mapping], trusted_keys: set[str] | None = None
) -> Verification:
    """Chain check plus: every checkpoint is validly signed and its record is still there, unchanged.

    ``trusted_keys`` (hex public keys) pins who may sign; without it any key found in
    the checkpoints is accepted, which still catches truncation but not a forger who
    re-signed with a key of their own. Records are streamed, not held in memory.
    """
    marks = list(marks)
    wanted = {mark["seq"] for mark in marks}
    seen: dict[int, str] = {}

    def remember(stream: Iterable[Mapping]) -> Iterator[Mapping]:
        for record in stream:
            if record["seq"] in wanted:
                seen[record["seq"]] = record["hash"]
            yield record

    result = verify_chain(remember(records))
    if not result.ok:
        return result
    for mark in marks:
        seq = mark["seq"]
        if trusted_keys is not None and mark["public_key"] not in trusted_keys:
            return Verification(False, result.records, seq, f"checkpoint at record {seq} is signed by an unknown key")
        try:
            key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(mark["public_key"]))
            key.verify(bytes.fromhex(mark["signature"]), _message(seq, mark["hash"], mark["ts"]))
        except (InvalidSignature, ValueError):
            return Verification(False, result.records, seq, f"checkpoint at record {seq} has an invalid signature")
        if seq not in seen:
            return Verification(
                False, result.records, seq, f"record {seq} was signed in a checkpoint but is gone: the log was truncated"
            )
        if seen[seq] != mark["hash"]:
            return Verification(False, result.records, seq, f"record {seq} differs from its signed checkpoint")
    return result


def default_keys_dir(store_url: str) -> Path:
    """Keys live beside the SQLite database (var/keys), or in ./var/keys for PostgreSQL."""
    path = sqlite_path(store_url)
    return (path.parent if path is not None else Path("var")) / "keys"


def trusted_keys(directory: Path) -> set[str] | None:
    public = directory / (KEY_FILE + ".pub")
    return {public.read_text().strip()} if public.is_file() else None


def export_jsonl(engine: Engine, target: Path, actor: str, reason: str) -> dict:
    """Write the whole log as JSONL (records as hashed) plus a manifest; the export is audited first."""
    log = AuditLog(engine)
    log.append(actor, "audit.export", "audit_log", str(target), reason)
    digest = hashlib.sha256()
    count = 0
    first = last = None
    partial = target.with_name(target.name + ".part")
    with partial.open("w", encoding="utf-8") as handle:
        for record in log.records():
            line = json.dumps(record.stored(), sort_keys=True, separators=(",", ":")) + "\n"
            handle.write(line)
            digest.update(line.encode())
            count += 1
            first = record.seq if first is None else first
            last = record.seq
    os.replace(partial, target)
    manifest = {
        "file": target.name,
        "sha256": digest.hexdigest(),
        "records": count,
        "first_seq": first,
        "last_seq": last,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exported_by": actor,
        "checkpoints": [c.as_dict() for c in checkpoints(engine)],
    }
    target.with_name(target.name + ".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify_export(target: Path, trusted: set[str] | None = None) -> Verification:
    """Verify an exported JSONL file against its manifest, chain and signed checkpoints."""
    manifest_path = target.with_name(target.name + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    data = target.read_bytes()
    if hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        return Verification(False, 0, None, f"{target.name} does not match the hash in its manifest")
    records = (json.loads(line) for line in data.decode().splitlines() if line.strip())
    return verify_with_checkpoints(records, manifest["checkpoints"], trusted)
