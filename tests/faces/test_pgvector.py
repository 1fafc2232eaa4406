"""pgvector matching against a real PostgreSQL (pgserver) gives FAISS's answers."""

from datetime import datetime, timedelta, timezone

import cv2
import numpy as np

from safecity.db import make_engine, upgrade
from safecity.faces.matcher import FaceMatcher
from safecity.faces.pgvector import PgVectorMatcher
from safecity.governance.watchlists import Governance, WatchlistService


class VectorEnroller:
    """Hands the service known 128-d templates, so both matchers see the same gallery."""

    def __init__(self, vectors):
        self.vectors = iter(vectors)

    def template(self, image):
        return next(self.vectors), 1.0


def test_pgvector_agrees_with_faiss_and_respects_governance(pg_url):
    engine = make_engine(pg_url)
    upgrade(engine)
    rng = np.random.default_rng(0)
    gallery = rng.standard_normal((200, 128)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    author, supervisor = WatchlistService(engine, "op:alice"), WatchlistService(engine, "sup:bob")
    author.create_list("wanted", "face", reason="r")
    rules = Governance("warrant 1", "arrest", "Judge", datetime.now(timezone.utc) + timedelta(days=5))
    enroller = VectorEnroller(gallery)
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    ids = []
    for i in range(len(gallery)):
        entry = author.add_face_entry("wanted", f"P{i}", [(f"{i}.png", png)], rules, "r", enroller)
        if i != 7:  # entry 7 stays unapproved: it must never match
            supervisor.approve(entry, "checked")
        ids.append(entry)
    author.expire(ids[9], "withdrawn")

    probes = gallery[:20] + 0.05 * rng.standard_normal((20, 128)).astype(np.float32)
    probes /= np.linalg.norm(probes, axis=1, keepdims=True)
    faiss_hits = FaceMatcher(author, default_threshold=0.5, refresh_seconds=0).match(probes)
    pg_hits = PgVectorMatcher(engine, default_threshold=0.5).match(probes)
    for i, (a, b) in enumerate(zip(faiss_hits, pg_hits)):
        if i in (7, 9):
            assert a is None and b is None
        else:
            assert a.entry_id == b.entry_id == ids[i]
            assert abs(a.score - b.score) < 1e-4
    with engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")  # 200 rows: force the planner's hand
        probe = "[" + ",".join("0.1" for _ in range(128)) + "]"
        plan = "\n".join(
            row[0]
            for row in connection.exec_driver_sql(
                f"EXPLAIN SELECT id FROM face_templates ORDER BY embedding <#> '{probe}'::vector LIMIT 5"
            )
        )
    assert "ix_face_templates_embedding" in plan  # the HNSW index exists and serves the query
    engine.dispose()
