import json

from typer.testing import CliRunner

from safecity.cli import app
from safecity.evaluation.faces import roc_points


def test_report_renders_curves_and_group_rates(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    roc = roc_points(rng.normal(0.7, 0.1, 500), rng.normal(0.1, 0.1, 5000))
    assert roc["far"][0] == 1.0 and roc["far"][-1] <= 1e-3 and roc["tar"][0] == 1.0
    (tmp_path / "celeba.json").write_text(json.dumps({
        "task": "faces", "dataset": "/data/faces/celeba", "fte_rate": 0.01, "ms_per_face": 12.0,
        "verification": {"tar_at_far": {"1e-2": 0.9, "1e-3": 0.85}, "auc": 0.97, "roc": roc},
        "identification": {"rank1": 0.86, "fnir_at_fpir": {"1e-3": 0.4}},
    }))
    (tmp_path / "fair.json").write_text(json.dumps({
        "task": "fairness", "threshold": 0.54, "fmr_by_group": {"A": 1e-4, "B": 0.0},
        "detection_rate_by_group": {"A": 1.0, "B": 0.98}, "fmr_max_min_ratio": 100.0, "n_by_group": {"A": 300, "B": 40},
    }))
    (tmp_path / "notes.json").write_text("not json at all")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("<polyline") == 2  # ROC and DET of the one faces result
    assert "False-match rate by group" in page and ">B<" in page and "0.85" in page
    empty = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert empty.exit_code == 2
