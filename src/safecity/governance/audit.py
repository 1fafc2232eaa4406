"""The append-only, hash-chained audit log that every other feature writes to.

Each record holds who did what, when, why and to which object, plus the hash of the
record before it; its own hash covers all of that. Editing a record breaks its hash,
deleting or reordering one breaks the chain at the next, and :func:`AuditLog.verify`
names the first record where either happens. The database also refuses UPDATE and
DELETE on the table (see migration 0001), so tampering needs deliberate effort.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Iterator, Mapping

from sqlalchemy import Engine, String, Text, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Mapped, Session, mapped_column

from safecity.db import Base

GENESIS = "0" * 64
_FIELDS = ("seq", "ts", "actor", "action", "object_type", "object_id", "reason", "details", "prev_hash")


class AuditRecord(Base):
    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(128))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(256))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    def stored(self) -> dict[str, Any]:
        """The record exactly as hashed (``details`` as canonical JSON text), plus its hash."""
        return {**{name: getattr(self, name) for name in _FIELDS}, "hash": self.hash}

    def as_dict(self) -> dict[str, Any]:
        """The record for reading: ``details`` parsed."""
        return {**self.stored(), "details": json.loads(self.details)}


def record_hash(fields: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a record's fields (its own hash excluded)."""
    canonical = json.dumps({name: fields[name] for name in _FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def local_actor() -> str:
    """Who is at the keyboard, for CLI actions: the SAFECITY_ACTOR or the OS user."""
    if os.environ.get("SAFECITY_ACTOR"):
        return os.environ["SAFECITY_ACTOR"]
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # pragma: no cover - no passwd entry
        return "cli:unknown"


@dataclass(slots=True)
class Verification:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None


class AuditLog:
    _lock = threading.Lock()  # one writer at a time in this process; the DB handles others

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def append(
        self,
        actor: str,
        action: str,
        object_type: str,
        object_id: str | int,
        reason: str = "",
        details: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one record; retries when another process appended at the same moment."""
        if not actor or not action:
            raise ValueError("an audit record needs an actor and an action")
        body = json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str)
        for attempt in range(50):
            try:
                with self._lock, Session(self.engine, expire_on_commit=False) as session, session.begin():
                    if self.engine.dialect.name == "postgresql":
                        session.execute(text("SELECT pg_advisory_xact_lock(727274)"))
                    last = session.execute(
                        select(AuditRecord.seq, AuditRecord.hash).order_by(AuditRecord.seq.desc()).limit(1)
                    ).first()
                    fields = {
                        "seq": (last.seq + 1) if last else 1,
                        "ts": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
                        "actor": actor,
                        "action": action,
                        "object_type": object_type,
                        "object_id": str(object_id),
                        "reason": reason,
                        "details": body,
                        "prev_hash": last.hash if last else GENESIS,
                    }
                    record = AuditRecord(**fields, hash=record_hash(fields))
                    session.add(record)
                return record
            except (IntegrityError, OperationalError):
                time.sleep(min(0.01 * (attempt + 1), 0.2))
        raise RuntimeError("could not append to the audit log: the database stayed busy")

    def records(self, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditRecord]:
        """All records in chain order, read in batches so a long log fits in memory."""
        with Session(self.engine) as session:
            while True:
                rows = session.scalars(
                    select(AuditRecord).where(AuditRecord.seq > after_seq).order_by(AuditRecord.seq).limit(batch)
                ).all()
                if not rows:
                    return
                yield from rows
                after_seq = rows[-1].seq

    def tail(self, n: int = 20) -> list[AuditRecord]:
        with Session(self.engine) as session:
            rows = session.scalars(select(AuditRecord).order_by(AuditRecord.seq.desc()).limit(n)).all()
        return list(reversed(rows))

    def verify(self) -> Verification:
        """Walk the chain; report the first record that was edited, removed or moved."""
        return verify_chain(record.stored() for record in self.records())


def verify_chain(records: Iterable[Mapping[str, Any]]) -> Verification:
    """Check records (as stored: ``details`` is the canonical JSON text) in chain order.

    Used on the live table and on a JSONL export alike, so a regulator can verify an
    export with nothing but this function.
    """
    expected_seq = 1
    prev = GENESIS
    count = 0
    for record in records:
        seq = record["seq"]
        if seq != expected_seq:
            kind = "missing (deleted)" if seq > expected_seq else "out of order"
            return Verification(False, count, expected_seq, f"record {expected_seq} is {kind}")
        if record["prev_hash"] != prev:
            return Verification(
                False,
                count,
                seq,
                f"record {seq} does not follow the record before it: a record was deleted, reordered or replaced",
            )
        if record_hash(record) != record["hash"]:
            return Verification(False, count, seq, f"record {seq} was edited after it was written")
        prev = record["hash"]
        expected_seq += 1
        count += 1
    return Verification(True, count)
