"""`safecity report`: one HTML page of the latest eval results, with plots, for people.

It reads the JSON files that `safecity eval …` and `safecity bench …` wrote into a
folder (the newest of each task wins) and renders tables and inline SVG plots: the
ROC and DET curves of face verification, per-group false-match rates, read rates per
plate condition. No plotting library and nothing fetched: the page is one file.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

W, H, PAD = 460, 300, 48


def latest_results(folder: Path) -> dict[str, tuple[Path, dict]]:
    """The newest result per task (faces results per data set), by file modification time."""
    found: dict[str, tuple[Path, dict]] = {}
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "task" not in data:
            continue
        key = data["task"] + (f":{Path(str(data.get('dataset', ''))).name}" if data.get("dataset") else f":{path.stem}")
        found[key] = (path, data)
    return found


def _axis(x0, x1, y0, y1, log_x=False, log_y=False):
    def fx(v):
        v = math.log10(max(v, 1e-6)) if log_x else v
        a, b = (math.log10(x0), math.log10(x1)) if log_x else (x0, x1)
        return PAD + (v - a) / (b - a) * (W - 2 * PAD)

    def fy(v):
        v = math.log10(max(v, 1e-6)) if log_y else v
        a, b = (math.log10(y0), math.log10(y1)) if log_y else (y0, y1)
        return H - PAD - (v - a) / (b - a) * (H - 2 * PAD)

    return fx, fy


def _frame(title: str, xlabel: str, ylabel: str, ticks_x, ticks_y, fx, fy) -> list[str]:
    parts = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{W / 2}" y="18" text-anchor="middle" class="t">{html.escape(title)}</text>',
             f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" class="box"/>']
    for value, label in ticks_x:
        parts.append(f'<text x="{fx(value):.1f}" y="{H - PAD + 16}" text-anchor="middle">{label}</text>')
    for value, label in ticks_y:
        parts.append(f'<text x="{PAD - 6}" y="{fy(value) + 4:.1f}" text-anchor="end">{label}</text>')
    parts.append(f'<text x="{W / 2}" y="{H - 8}" text-anchor="middle">{html.escape(xlabel)}</text>')
    parts.append(f'<text x="14" y="{H / 2}" transform="rotate(-90 14 {H / 2})" text-anchor="middle">'
                 f'{html.escape(ylabel)}</text>')
    return parts


def roc_svg(curves: dict[str, dict]) -> str:
    fx, fy = _axis(1e-4, 1, 0, 1, log_x=True)
    ticks_x = [(10 ** -k, f"1e-{k}") for k in range(4, 0, -1)] + [(1, "1")]
    parts = _frame("ROC: true accepts against false accepts", "FAR (log)", "TAR", ticks_x,
                   [(v / 5, f"{v / 5:.1f}") for v in range(6)], fx, fy)
    for n, (name, roc) in enumerate(curves.items()):
        points = " ".join(f"{fx(max(f, 1e-4)):.1f},{fy(t):.1f}" for f, t in zip(roc["far"], roc["tar"]))
        parts.append(f'<polyline points="{points}" class="c{n % 4}"/>')
        parts.append(f'<text x="{W - PAD - 4}" y="{H - PAD - 10 - 14 * n}" text-anchor="end" class="l{n % 4}">'
                     f'{html.escape(name)}</text>')
    return "\n".join(parts + ["</svg>"])


def det_svg(curves: dict[str, dict]) -> str:
    fx, fy = _axis(1e-4, 1, 1e-3, 1, log_x=True, log_y=True)
    ticks = [(10 ** -k, f"1e-{k}") for k in range(4, 0, -1)] + [(1, "1")]
    parts = _frame("DET: false rejects against false accepts", "FAR (log)", "FRR (log)", ticks, ticks[1:], fx, fy)
    for n, (name, roc) in enumerate(curves.items()):
        points = " ".join(
            f"{fx(max(f, 1e-4)):.1f},{fy(max(1 - t, 1e-3)):.1f}" for f, t in zip(roc["far"], roc["tar"])
        )
        parts.append(f'<polyline points="{points}" class="c{n % 4}"/>')
    return "\n".join(parts + ["</svg>"])


def bars_svg(title: str, values: dict[str, float], log: bool = True, unit: str = "") -> str:
    if not values:
        return ""
    top = max(max(values.values()), 1e-6)
    low = 1e-6
    parts = [f'<svg viewBox="0 0 {W} {40 + 28 * len(values)}" width="{W}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{W / 2}" y="18" text-anchor="middle" class="t">{html.escape(title)}</text>']
    for i, (name, value) in enumerate(values.items()):
        if log:
            share = (math.log10(max(value, low)) - math.log10(low)) / (math.log10(top * 1.5) - math.log10(low))
        else:
            share = value / (top * 1.1)
        y = 32 + 28 * i
        parts.append(f'<text x="110" y="{y + 15}" text-anchor="end">{html.escape(str(name))}</text>')
        parts.append(f'<rect x="116" y="{y}" width="{max(share, 0) * (W - 220):.1f}" height="20" class="bar"/>')
        parts.append(f'<text x="{122 + max(share, 0) * (W - 220):.1f}" y="{y + 15}">{value:.2g}{unit}</text>')
    return "\n".join(parts + ["</svg>"])


def _table(rows: list[tuple[str, object]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _section(key: str, path: Path, data: dict) -> tuple[str, str]:
    task = data["task"]
    title = f"{task} — {path.name}"
    if task == "faces":
        v, i = data.get("verification") or {}, data.get("identification") or {}
        rows = [("failure to enrol", data.get("fte_rate")), ("ms per face", data.get("ms_per_face"))]
        rows += [(f"TAR @ FAR {k}", x) for k, x in (v.get("tar_at_far") or {}).items()]
        rows += [("AUC", v.get("auc")), ("rank-1", i.get("rank1"))]
        rows += [(f"FNIR @ FPIR {k}", x) for k, x in (i.get("fnir_at_fpir") or {}).items()]
        return title, _table(rows)
    if task == "fairness":
        rows = [("threshold", data.get("threshold")), ("max/min FMR ratio", data.get("fmr_max_min_ratio"))]
        plot = bars_svg("False-match rate by group (log scale)", data.get("fmr_by_group") or {})
        plot += bars_svg("Face detection rate by group", data.get("detection_rate_by_group") or {}, log=False)
        return title, _table(rows + list((data.get("n_by_group") or {}).items())) + plot
    if task == "plates":
        rows = [(k, data.get(k)) for k in ("n", "exact_read_rate", "char_accuracy", "detection_recall", "ms_per_image")]
        return title, _table(rows) + bars_svg("Exact read rate by condition", data.get("by_condition") or {}, log=False)
    if task == "counting":
        return title, _table([(k, data.get(k)) for k in ("n", "mae", "rmse", "ms_per_image")])
    scalars = [(k, v) for k, v in data.items() if isinstance(v, (int, float, str)) and k != "task"]
    return title, _table(scalars)


def render(folder: Path) -> str:
    results = latest_results(folder)
    curves = {
        Path(str(d.get("dataset", p.stem))).name: d["verification"]["roc"]
        for p, d in results.values()
        if d["task"] == "faces" and (d.get("verification") or {}).get("roc")
    }
    sections = [_section(k, p, d) for k, (p, d) in sorted(results.items())]
    plots = (roc_svg(curves) + det_svg(curves)) if curves else "<p>No face verification results with curves.</p>"
    body = "".join(f"<section><h2>{html.escape(t)}</h2>{c}</section>" for t, c in sections)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>safecity evaluation report</title>
<style>
body{{font:15px system-ui,sans-serif;margin:2rem;background:#111418;color:#e8eaed}}
h1,h2{{font-weight:600}} section{{margin:1.5rem 0}} table{{border-collapse:collapse}}
th,td{{padding:.25rem .8rem;border-bottom:1px solid #333;text-align:left}} th{{color:#9aa0a6;font-weight:500}}
svg{{background:#181c21;margin:.5rem 1rem .5rem 0;font-size:11px;fill:#c8ccd0}} .t{{font-size:13px}}
.box{{fill:none;stroke:#444}} polyline{{fill:none;stroke-width:2}} .bar{{fill:#4f8cc9}}
.c0{{stroke:#4f8cc9}}.c1{{stroke:#e8a33d}}.c2{{stroke:#5fb36b}}.c3{{stroke:#d0605e}}
.l0{{fill:#4f8cc9}}.l1{{fill:#e8a33d}}.l2{{fill:#5fb36b}}.l3{{fill:#d0605e}}
</style></head><body><h1>safecity evaluation report</h1>
<p>Results from <code>{html.escape(str(folder))}</code>, rendered {stamp}. Group labels come from the data sets and
are used for measurement only.</p>
<section><h2>Face verification curves</h2>{plots}</section>{body}</body></html>"""
