"""Watchlist matching inside PostgreSQL with pgvector, for galleries shared across machines.

Same answers as :class:`~safecity.faces.matcher.FaceMatcher` (best approved, unexpired
entry above its list's threshold), but the gallery stays in the database: every node
of a Ray cluster queries one HNSW index instead of holding its own copy.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
from sqlalchemy import Engine, text

from safecity.faces.matcher import FaceHit

EF_SEARCH = 100

_QUERY = text(
    """
    SELECT t.entry_id, e.label, w.name, w.threshold, -(t.embedding <#> CAST(:probe AS vector)) AS score
    FROM face_templates t
    JOIN watchlist_entries e ON e.id = t.entry_id
    JOIN watchlists w ON w.id = e.watchlist_id
    WHERE e.expires_at > :now AND e.approved_at IS NOT NULL AND w.kind = 'face'
    ORDER BY t.embedding <#> CAST(:probe AS vector)
    LIMIT :k
    """
)


def vector_literal(vector: np.ndarray) -> str:
    return "[" + ",".join(f"{float(v):.7g}" for v in np.asarray(vector, np.float32).ravel()) + "]"


def sync_embeddings(engine: Engine) -> int:
    """Fill the vector column for templates stored without it (returns how many)."""
    with engine.begin() as connection:
        rows = connection.execute(text("SELECT id, vector FROM face_templates WHERE embedding IS NULL")).all()
        for template_id, raw in rows:
            connection.execute(
                text("UPDATE face_templates SET embedding = CAST(:v AS vector) WHERE id = :id"),
                {"v": vector_literal(np.frombuffer(raw, np.float32)), "id": template_id},
            )
    return len(rows)


class PgVectorMatcher:
    def __init__(self, engine: Engine, default_threshold: float) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("pgvector matching needs a PostgreSQL store")
        self.engine = engine
        self.default_threshold = default_threshold

    def match(self, probes: np.ndarray, k: int = 5) -> list[FaceHit | None]:
        sync_embeddings(self.engine)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        hits: list[FaceHit | None] = []
        with self.engine.begin() as connection:
            connection.execute(text(f"SET LOCAL hnsw.ef_search = {EF_SEARCH}"))
            for probe in np.atleast_2d(probes):
                rows = connection.execute(_QUERY, {"probe": vector_literal(probe), "now": now, "k": k}).all()
                best = None
                for entry_id, label, watchlist, threshold, score in rows:
                    threshold = self.default_threshold if threshold is None else float(threshold)
                    if score >= threshold and (best is None or score > best.score):
                        best = FaceHit(int(entry_id), label, watchlist, float(score), threshold)
                hits.append(best)
        return hits
