"""The vector index behind watchlist matching: exact up to 100k templates, compressed scan + exact re-rank beyond.

Exact inner-product search is fast enough (and perfectly accurate) for most watchlists.
A city-scale gallery switches to a two-stage search that does not depend on the data
having cluster or manifold structure (graph and inverted-file indexes lose recall on
face templates of many unrelated people, whose neighbourhoods are nearly uniform):

1. every template is scanned in a 16-byte product-quantised form (32 sub-vectors of
   4 bits, FAISS "fast scan": SIMD look-up tables, about a millisecond per million);
2. the best ``REFINE_FACTOR`` x k candidates are re-scored exactly on the full float
   templates, so the returned scores are the true cosines that thresholds apply to.

`safecity bench search` measures latency and recall against exact search.
"""

from __future__ import annotations

import faiss
import numpy as np

EXACT_LIMIT = 100_000
PQ_SUBVECTORS = 32  # 4 bits each: 16 bytes per template in the scanned stage
REFINE_FACTOR = 16
TRAIN_SAMPLE = 100_000


def build_index(vectors: np.ndarray, seed: int = 0) -> faiss.Index:
    """An inner-product index over L2-normalised templates (rows of ``vectors``)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    if len(vectors) <= EXACT_LIMIT:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.index_factory(dim, f"PQ{PQ_SUBVECTORS}x4fs,RFlat", faiss.METRIC_INNER_PRODUCT)
        sample = vectors
        if len(vectors) > TRAIN_SAMPLE:
            rows = np.random.default_rng(seed).choice(len(vectors), TRAIN_SAMPLE, replace=False)
            sample = vectors[np.sort(rows)]
        index.train(sample)
        index.k_factor = REFINE_FACTOR
    index.add(vectors)
    return index
