"""``report.html``: one self-contained page per run (the preview is embedded; the fly-through
GIF/MP4 sit beside it in the run folder).

It shows the input (prompt, files, SceneSpec and how the prompt was read), every stage with its
backend, status, time and peak memory (from manifest.json), every asset with its size, triangle
or splat count and validation result, and the quality measures of worldgen.report.previews.
The page holds run times, so it is written after a run, outside the stage cache.
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

from ..io import atomic_write
from ..pipeline import read_manifest
from ..registry import STAGES
from ..types import SEMANTIC_CLASSES
from .previews import FLY_GIF, FLY_MP4, PREVIEW_PNG, PreviewConfig, artifact_hashes, class_palette, make_previews
from .validation import validate_run, verdict

REPORT_HTML = "report.html"

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:6px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eee} td.num{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#176d2a;font-weight:600} .failed{color:#b00020;font-weight:600} .skipped,.notvalidated{color:#9a6700;font-weight:600}
.muted{color:#666} img.preview{max-width:100%;border:1px solid #ccc;background:#fff}
pre{background:#f0f0f0;padding:8px;overflow:auto;max-height:360px}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _table(headers: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f} %" if pct else f"{v:.2f}"


def _title(req: dict) -> str:
    if req.get("prompt"):
        return f"“{req['prompt']}”"
    for k in ("spec", "panorama", "image"):
        if req.get(k):
            return f"{k}: {Path(req[k]).name}"
    return "worldgen run"


def _input_section(m: dict) -> str:
    req = m.get("request", {})
    rows = []
    for k in ("prompt", "panorama", "depth", "image", "spec"):
        if req.get(k):
            sha = req.get(f"{k}_sha256")
            rows.append([_e(k), _e(req[k]) + (f' <span class="muted">sha256 {_e(sha[:16])}…</span>' if sha else "")])
    for k in ("seed", "preset", "eye_height"):
        if k in m:
            rows.append([_e(k), _e(m[k]) + (" m" if k == "eye_height" else "")])
    rows.append(["worldgen", _e(m.get("worldgen", "?"))])
    out = _table(["input", "value"], rows)
    pano = m.get("stages", {}).get("panorama", {}).get("report", {})
    if pano.get("explanation"):
        out += (
            "<p>How the prompt was read:</p><ul>" + "".join(f"<li>{_e(x)}</li>" for x in pano["explanation"]) + "</ul>"
        )
    if m.get("scene_spec"):
        out += "<p>SceneSpec (edit it and rebuild with <code>worldgen generate --spec FILE</code>):</p>"
        out += f"<pre>{_e(json.dumps(m['scene_spec'], indent=2, sort_keys=True))}</pre>"
    if pano.get("classes"):
        total = sum(pano["classes"].values()) or 1
        pal = class_palette()
        ids = {name: i for i, name in enumerate(SEMANTIC_CLASSES)}

        def swatch(name: str) -> str:
            if name not in ids:
                return ""
            r, g, b = (int(c) for c in pal[ids[name]])
            return f"<span style='display:inline-block;width:10px;height:10px;background:rgb({r},{g},{b})'></span> "

        out += "<p>Classes in the panorama (colours as in the preview's semantics): " + ", ".join(
            f"{swatch(k)}{_e(k)} {100 * v / total:.1f} %"
            for k, v in sorted(pano["classes"].items(), key=lambda kv: -kv[1])
        )
        out += "</p>"
    return out


def _stages_section(m: dict) -> str:
    rows = []
    total = 0.0
    stages = m.get("stages", {})
    for name in [s for s in STAGES if s in stages] + sorted(set(stages) - set(STAGES)):
        st = stages[name]
        secs = st.get("wall_seconds")
        total += secs or 0.0
        status = "reused from cache" if st.get("cached") else "ran"
        peak = st.get("peak_rss_mb")
        rows.append(
            [
                _e(name),
                _e(st.get("backend", "-")),
                _e(status),
                f"{secs:.2f} s" if secs is not None else "-",
                f"{peak:.0f} MB" if peak is not None else "-",
                _e(", ".join(sorted(st.get("files", {})))),
            ]
        )
    note = (
        '<p class="muted">Times and peak memory (resident set size of the process while the stage ran) are those of '
        "the run that produced each stage; a stage reused from the cache shows the time it took when it ran.</p>"
    )
    return _table(["stage", "backend", "status", "time", "peak memory", "files"], rows, {3, 4}) + (
        f"<p>Sum of stage times: {total:.2f} s</p>" + note
    )


def _assets_section(run: Path, m: dict, validation: dict, counts: dict) -> str:
    export = m.get("stages", {}).get("export", {}).get("report", {})
    tris = export.get("mesh_triangles") or counts.get("triangles") or {}
    n_splats = export.get("splats", counts.get("splats"))
    rows = []
    for name, v in sorted(validation.items()):
        path = run / name
        size = path.stat().st_size if path.exists() else 0
        suffix = path.suffix.lower()
        if suffix in (".ply", ".spz", ".splat") or name.startswith("splats"):
            what = f"{n_splats:,} splats" if n_splats is not None else "-"
        else:
            what = ", ".join(f"{k} {t:,}" for k, t in tris.items()) + " triangles" if tris else "-"
        word, detail = verdict(v["findings"])
        cls = word.replace(" ", "")
        rows.append(
            [
                f'<a href="{_e(name)}">{_e(name)}</a>',
                _e(_size(size)),
                _e(what),
                f'<span class="{cls}">{_e(word)}</span> <span class="muted">{_e(detail)}</span>',
            ]
        )
    if not rows:
        return "<p>No exported assets in this run folder (the export stage has not run).</p>"
    extra = ""
    if counts.get("texture"):
        extra = f"<p>World texture: {counts['texture'][0]} × {counts['texture'][1]} px.</p>"
    return _table(["file", "size", "contents", "validation"], rows, {1}) + extra


def _quality_section(prev: dict) -> str:
    q = prev.get("quality", {})
    truth = q.get("truth")
    if truth:
        intro = (
            "<p>This is a procedural world, so every viewpoint has an exact ground-truth render. "
            "PSNR compares the render with it (holes render magenta and cost PSNR); <b>holes</b> = share of pixels where "
            "a surface should be seen but the render shows nothing, or something more than 1.5× farther (a gap); "
            "<b>floaters</b> = share of pixels where the render shows something more than 10 % nearer than the true surface.</p>"
        )
        cols = [("psnr_db", "PSNR dB", False), ("holes", "holes", True), ("floaters", "floaters", True)]
    else:
        intro = (
            "<p>No ground truth exists for this world (it was not built procedurally), so only truth-free measures are "
            "shown: <b>holes</b> = share of pixels whose direction is not sky at the capture point but where the render "
            "shows nothing or the sky (an estimate: silhouettes against the sky move a little with the viewpoint).</p>"
        )
        cols = [("holes", "holes", True)]
    headers = ["viewpoint"]
    for what in ("splats", "mesh"):
        headers += [f"{what} {c[1]}" for c in cols]
    rows = []
    for v in q.get("views", []):
        row = [_e(v["label"])]
        for what in ("splats", "mesh"):
            for key, _, pct in cols:
                row.append(_fmt(v.get(what, {}).get(key), pct))
        rows.append(row)
    out = intro + _table(headers, rows, set(range(1, len(headers))))
    summ = q.get("summary", {})
    srows = []
    for dist in ("0 m", "0.5 m", "1 m"):
        row = [_e(dist)]
        for what in ("splats", "mesh"):
            for key, _, pct in cols:
                row.append(_fmt(summ.get(what, {}).get(dist, {}).get(key), pct))
        srows.append(row)
    out += "<p>Means by distance from the capture point:</p>" + _table(
        ["distance"] + headers[1:], srows, set(range(1, len(headers)))
    )
    c = q.get("counts", {})
    facts = []
    if "panorama" in c:
        facts.append(f"panorama {c['panorama'][0]} × {c['panorama'][1]} px")
    if "splats" in c:
        facts.append(f"{c['splats']:,} splats")
    if "triangles" in c:
        facts.append(", ".join(f"{k} {v:,}" for k, v in c["triangles"].items()) + " triangles")
    if "texture" in c:
        facts.append(f"world texture {c['texture'][0]} × {c['texture'][1]} px")
    return out + ("<p>" + _e("; ".join(facts)) + ".</p>" if facts else "")


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


def render_report(run_dir: str | os.PathLike, previews: dict, validation: dict) -> str:
    """The report page as a string (see the module docstring)."""
    run = Path(run_dir)
    m = read_manifest(run)
    title = _title(m.get("request", {}))
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>worldgen report: {_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1><p class='muted'>run folder {_e(run.resolve())}</p>",
    ]
    if (run / PREVIEW_PNG).exists():
        parts.append(
            "<h2>Preview</h2>"
            f"<img class='preview' id='preview' alt='panorama, depth and renders of the world' src='{_data_uri(run / PREVIEW_PNG, 'image/png')}'>"
        )
    if (run / FLY_GIF).exists():
        what = previews.get("fly_through", "")
        parts.append(
            f"<h2>Fly-through ({_e(what)})</h2><p>A loop of 0.5 m radius around the capture point at standing height. "
            f"<a href='{FLY_MP4}'>{FLY_MP4}</a></p><img alt='fly-through' src='{FLY_GIF}'>"
        )
    parts += ["<h2>Input</h2>", _input_section(m), "<h2>Stages</h2>", _stages_section(m)]
    parts += ["<h2>Assets</h2>", _assets_section(run, m, validation, previews.get("quality", {}).get("counts", {}))]
    if previews.get("quality"):
        parts += ["<h2>Quality</h2>", _quality_section(previews)]
    parts.append(
        "<p class='muted'>Rebuild this page with <code>worldgen report DIR</code>; explore the world with "
        "<code>worldgen view DIR</code>.</p></body></html>"
    )
    return "".join(parts) + "\n"


def write_report(
    run_dir: str | os.PathLike, *, validate: bool = True, config: PreviewConfig = PreviewConfig(), force: bool = False
) -> Path:
    """Make (or reuse) the previews and validation results, then write ``report.html``.

    Args:
        run_dir: a run folder.
        validate: run the asset validators on files without a stored result.
        config: preview sizes.
        force: redo the previews even when current.

    Returns:
        The path of report.html.
    """
    run = Path(run_dir)
    manifest = read_manifest(run)  # a clear error for a folder that holds no run
    have = artifact_hashes(manifest)
    prev = make_previews(run, config, force=force) if "panorama" in have and "depth" in have else {}
    from worldgen.exporters.validate import find_assets

    validation = validate_run(run, validate) if find_assets(run) else {}
    out = run / REPORT_HTML
    atomic_write(out, render_report(run, prev, validation).encode())
    return out
