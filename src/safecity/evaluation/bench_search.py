"""Gallery search benchmark: latency percentiles and recall of the ANN index vs exact search.

The gallery imitates face templates: identities are random unit vectors, and each
template is its identity plus noise, so neighbours are structured the way a real
watchlist's are (uniform random vectors are an unrealistically hard case for any
index). Probes are fresh noisy views of enrolled identities. Recall is the share of
probes whose top-1 from the index equals the exact (brute-force) top-1. The same share
is also reported for non-mated probes (people not in the gallery), whose exact top-1 is
an unrelated template far below any threshold: a harder and less consequential case.
"""

from __future__ import annotations

import time

import faiss
import numpy as np

from safecity.faces.index import build_index


def synthetic_gallery(n: int, dim: int, seed: int = 0, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    identities = rng.standard_normal((n, dim), dtype=np.float32)
    identities /= np.linalg.norm(identities, axis=1, keepdims=True)
    gallery = identities + noise / np.sqrt(dim) * rng.standard_normal((n, dim), dtype=np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    return gallery, identities


def bench_search(gallery_size: int, queries: int = 2000, dim: int = 128, threads: int | None = None) -> dict:
    if threads:
        faiss.omp_set_num_threads(threads)
    gallery, identities = synthetic_gallery(gallery_size, dim)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, gallery_size, queries)
    probes = identities[picks] + 0.6 / np.sqrt(dim) * rng.standard_normal((queries, dim), dtype=np.float32)
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)

    started = time.perf_counter()
    index = build_index(gallery)
    build_seconds = time.perf_counter() - started

    exact = faiss.IndexFlatIP(dim)
    exact.add(gallery)
    _, truth = exact.search(probes, 1)

    faiss.omp_set_num_threads(1)  # one probe gains nothing from threads, and their wake-ups cost p99
    latencies_ms, found = _search_one_by_one(index, probes)

    strangers = rng.standard_normal((min(queries, 500), dim), dtype=np.float32)
    strangers /= np.linalg.norm(strangers, axis=1, keepdims=True)
    _, stranger_truth = exact.search(strangers, 1)
    _, stranger_found = _search_one_by_one(index, strangers)
    return {
        "task": "bench-search",
        "gallery": gallery_size,
        "queries": queries,
        "dim": dim,
        "index": type(index).__name__,
        "build_seconds": round(build_seconds, 2),
        "p50_ms": round(float(np.percentile(latencies_ms, 50)), 4),
        "p99_ms": round(float(np.percentile(latencies_ms, 99)), 4),
        "recall": round(float(np.mean(found == truth[:, 0])), 4),
        "recall_nonmated": round(float(np.mean(stranger_found == stranger_truth[:, 0])), 4),
        "threads": faiss.omp_get_max_threads(),
    }


def _search_one_by_one(index: faiss.Index, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latencies (ms) and top-1 rows, one probe at a time: the latency an alert waits for."""
    latencies = np.empty(len(probes))
    found = np.empty(len(probes), np.int64)
    for i in range(len(probes)):
        t = time.perf_counter()
        _, rows = index.search(probes[i : i + 1], 1)
        latencies[i] = (time.perf_counter() - t) * 1000
        found[i] = rows[0, 0]
    return latencies, found


def summarise(result: dict) -> str:
    return (
        f"gallery {result['gallery']:,} x {result['dim']}-d, {result['index']} (built in {result['build_seconds']} s): "
        f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, recall@1 vs exact {result['recall']:.4f} "
        f"(non-mated probes {result['recall_nonmated']:.4f})"
    )
