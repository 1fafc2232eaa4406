"""Redacted exports: events and their snapshots leave the system blurred, with a manifest of hashes.

An export is a folder: ``events.jsonl``, one redacted JPEG per event snapshot (every
face and plate pixelated but for the matched subject of an alert), and
``manifest.json`` listing every file with its SHA-256, the query, who exported and
why. The export is written to the audit log with the manifest's own hash, so a copy
handed over can later be proven complete and unaltered.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path

import cv2

from safecity.events.store import EventQuery, EventStore
from safecity.governance.audit import AuditLog
from safecity.governance.redaction import redact
from safecity.governance.watchlists import GovernanceError
from safecity.records import ALERT_TYPES


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_events(store: EventStore, query: EventQuery, target: Path, actor: str, reason: str,
                  max_events: int = 10_000) -> dict:
    if not reason.strip():
        raise GovernanceError("an export needs a reason")
    if target.exists() and any(target.iterdir()):
        raise GovernanceError(f"{target} exists and is not empty")
    (target / "media").mkdir(parents=True, exist_ok=True)
    files: list[dict] = []
    count = 0
    with (target / "events.jsonl").open("w", encoding="utf-8") as out:
        offset = 0
        while count < max_events:
            rows, _ = store.search(replace(query, limit=min(500, max_events - count), offset=offset))
            if not rows:
                break
            offset += len(rows)
            for row in rows:
                record = row.as_dict()
                path = store.snapshot_path(row)
                image = cv2.imread(str(path)) if path is not None and path.is_file() else None
                if image is not None:
                    keep = row.box if row.type in ALERT_TYPES else None
                    redacted, hidden = redact(image, keep)
                    name = f"media/{row.id}.jpg"
                    cv2.imwrite(str(target / name), redacted, [cv2.IMWRITE_JPEG_QUALITY, 90])
                    record |= {"snapshot": name, "redacted_regions": hidden}
                out.write(json.dumps(record, sort_keys=True) + "\n")
                count += 1
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        files.append({"file": path.relative_to(target).as_posix(), "sha256": _sha256(path), "bytes": path.stat().st_size})
    manifest = {
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "exported_by": actor,
        "reason": reason.strip(),
        "query": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(query).items()
                  if v is not None and k not in ("limit", "offset")},
        "events": count,
        "redacted": True,
        "files": files,
    }
    manifest_path = target / "manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    AuditLog(store.engine).append(
        actor, "export", "events", str(target), reason.strip(),
        {"events": count, "files": len(files), "manifest_sha256": _sha256(manifest_path), "query": manifest["query"]},
    )
    return manifest


def verify_export_folder(target: Path) -> list[str]:
    """Problems found in an export folder against its manifest (empty when intact)."""
    manifest = json.loads((target / "manifest.json").read_text())
    problems = []
    listed = {entry["file"] for entry in manifest["files"]}
    for entry in manifest["files"]:
        path = target / entry["file"]
        if not path.is_file():
            problems.append(f"{entry['file']} is missing")
        elif _sha256(path) != entry["sha256"]:
            problems.append(f"{entry['file']} was changed")
    extra = {p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()} - listed - {"manifest.json"}
    problems += [f"{name} is not in the manifest" for name in sorted(extra)]
    return problems
