import json

from safecity.evaluation.bench_search import bench_search
from safecity.faces import index as index_module


def test_exact_index_is_perfect_and_fields_are_reported():
    result = bench_search(5000, queries=200)
    assert result["index"] == "IndexFlatIP" and result["recall"] == 1.0
    assert 0 < result["p50_ms"] <= result["p99_ms"]
    json.dumps(result)


def test_compressed_index_above_the_exact_limit_keeps_recall(monkeypatch):
    monkeypatch.setattr(index_module, "EXACT_LIMIT", 1000)
    result = bench_search(20000, queries=300)
    assert result["index"] == "IndexRefineFlat"
    assert result["recall"] >= 0.99
    assert 0 <= result["recall_nonmated"] <= 1
