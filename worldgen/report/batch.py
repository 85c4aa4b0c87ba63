"""``index.html`` of a batch: a thumbnail grid of every job with its status, time and error, each
linking to its run report; sortable and filterable by status with a little inline JavaScript.

It reads ``ROOT/batch.json`` as the batch runner writes it (docs: /work AREAS contract, format 1):
{"format": 1, "root", "started", "finished", "jobs": [{"name", "folder" (relative to root),
"status" (done|failed|skipped|timeout|interrupted|pending), "seconds", "attempts", "outputs",
"error"}]}. Thumbnails are small JPEGs of each job's panorama embedded in the page, so the index
opens anywhere; reports are linked relative to the batch root.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputError, WorldgenError
from ..io import atomic_write, safe_join

log = logging.getLogger(__name__)

BATCH_JSON = "batch.json"
INDEX_HTML = "index.html"
STATUSES = ("done", "failed", "skipped", "timeout", "interrupted", "pending")
_COLOURS = {
    "done": "#176d2a",
    "failed": "#b00020",
    "timeout": "#b35c00",
    "interrupted": "#8a4fff",
    "skipped": "#666",
    "pending": "#1f5fbf",
}


def read_batch(root: str | os.PathLike) -> dict:
    """Read and check ``ROOT/batch.json``; InputError (one line) when it is missing or malformed."""
    path = Path(root) / BATCH_JSON
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise InputError(
            f"{str(path)!r} does not exist; give a batch root (it holds batch.json) or a run folder"
        ) from e
    except (OSError, ValueError) as e:
        raise InputError(f"{str(path)!r} is not readable JSON ({e}); re-run the batch to rewrite it") from e
    if not isinstance(data, dict) or data.get("format") != 1 or not isinstance(data.get("jobs"), list):
        raise InputError(f"{str(path)!r} is not a format-1 batch file (needs 'format': 1 and a 'jobs' list)")
    for i, job in enumerate(data["jobs"]):
        if not isinstance(job, dict) or not isinstance(job.get("name"), str) or not isinstance(job.get("folder"), str):
            raise InputError(f"{str(path)!r}: job {i} needs a 'name' and a 'folder' string")
        if job.get("status") not in STATUSES:
            raise InputError(
                f"{str(path)!r}: job {job['name']!r} has status {job.get('status')!r}; expected one of {', '.join(STATUSES)}"
            )
    return data


def _thumbnail(folder: Path | None, width: int = 256) -> str | None:
    """A data URI of the job's panorama as a small JPEG, or None when there is none."""
    if folder is None:
        return None
    src = folder / "panorama.png"
    if not src.is_file():
        return None
    from PIL import Image

    try:
        with Image.open(src) as im:
            im = im.convert("RGB")
            im = im.resize((width, max(1, im.height * width // im.width)), Image.Resampling.BOX)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
    except OSError:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:20px;background:#fafafa;color:#222}
h1{font-size:21px;margin:0 0 4px} .bar{margin:12px 0;display:flex;gap:12px;flex-wrap:wrap;align-items:center}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(260px,1fr));gap:12px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px;overflow:hidden}
.card img{width:100%;aspect-ratio:2/1;object-fit:cover;background:#eee;display:block}
.noimg{width:100%;aspect-ratio:2/1;background:repeating-linear-gradient(45deg,#eee,#eee 8px,#f6f6f6 8px,#f6f6f6 16px);display:flex;align-items:center;justify-content:center;color:#888}
.name{font-weight:600;margin-top:6px;word-break:break-word} .st{font-weight:600}
.err{color:#b00020;font-size:12px;word-break:break-word} .muted{color:#666;font-size:12px}
"""

JS = """
(function(){
  var grid=document.getElementById('grid'), sel=document.getElementById('status'), sort=document.getElementById('sort');
  function apply(){
    var cards=Array.prototype.slice.call(grid.children), want=sel.value, key=sort.value, shown=0;
    cards.sort(function(a,b){
      if(key==='seconds'){return parseFloat(b.dataset.seconds)-parseFloat(a.dataset.seconds);}
      if(key==='status'){var c=a.dataset.status.localeCompare(b.dataset.status); if(c) return c;}
      return a.dataset.name.localeCompare(b.dataset.name);
    });
    cards.forEach(function(c){ c.style.display=(want==='all'||c.dataset.status===want)?'':'none';
      if(c.style.display==='') shown++; grid.appendChild(c); });
    document.getElementById('shown').textContent=shown+' shown';
  }
  // A link may preset the view: index.html#status=failed&sort=seconds
  location.hash.replace(/^#/,'').split('&').forEach(function(kv){
    var p=kv.split('='), el=p[0]==='status'?sel:(p[0]==='sort'?sort:null);
    if(el && Array.prototype.some.call(el.options,function(o){return o.value===p[1];})) el.value=p[1];
  });
  sel.addEventListener('change',apply); sort.addEventListener('change',apply); apply();
})();
"""


def render_index(root: str | os.PathLike, batch: dict) -> str:
    """The index page as a string."""
    root = Path(root)
    counts = {s: 0 for s in STATUSES}
    cards = []
    for job in batch["jobs"]:
        status = job["status"]
        counts[status] += 1
        try:
            folder = safe_join(root, job["folder"])
        except OutputError:
            folder = None  # a folder outside the root is never read or linked
        rel = Path(job["folder"]).as_posix()
        link = None
        if folder is not None and (folder / "report.html").is_file():
            link = f"{rel}/report.html"
        elif folder is not None and folder.is_dir():
            link = f"{rel}/"
        thumb = _thumbnail(folder)
        img = f"<img alt='{_e(job['name'])}' src='{thumb}'>" if thumb else "<div class='noimg'>no panorama</div>"
        secs = job.get("seconds")
        secs_s = f"{float(secs):.1f} s" if isinstance(secs, (int, float)) else "-"
        err = f"<div class='err'>{_e(job['error'])}</div>" if job.get("error") else ""
        name = f"<a href='{_e(link)}'>{_e(job['name'])}</a>" if link else _e(job["name"])
        attempts = job.get("attempts")
        cards.append(
            f"<div class='card' data-name='{_e(job['name'])}' data-status='{_e(status)}' "
            f"data-seconds='{float(secs) if isinstance(secs, (int, float)) else 0.0}'>"
            f"{f'<a href={chr(39)}{_e(link)}{chr(39)}>{img}</a>' if link else img}"
            f"<div class='name'>{name}</div>"
            f"<div><span class='st' style='color:{_COLOURS[status]}'>{_e(status)}</span> · {_e(secs_s)}"
            f"{f' · {int(attempts)} attempt(s)' if isinstance(attempts, int) else ''}</div>{err}</div>"
        )
    options = "".join(f"<option value='{s}'>{s} ({counts[s]})</option>" for s in STATUSES if counts[s])
    summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s]) or "no jobs"
    when = " → ".join(_e(batch[k]) for k in ("started", "finished") if batch.get(k))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>worldgen batch: {_e(root.name)}</title><style>{CSS}</style></head><body>"
        f"<h1>Batch {_e(root.name)}</h1><div class='muted'>{len(batch['jobs'])} jobs: {_e(summary)}"
        f"{'; ' + when if when else ''}</div>"
        "<div class='bar'><label>status <select id='status'><option value='all'>all</option>"
        f"{options}</select></label><label>sort by <select id='sort'><option value='name'>name</option>"
        "<option value='status'>status</option><option value='seconds'>time (longest first)</option></select></label>"
        "<span id='shown' class='muted'></span></div>"
        f"<div class='grid' id='grid'>{''.join(cards)}</div><script>{JS}</script></body></html>\n"
    )


def write_batch_index(root: str | os.PathLike, *, job_reports: bool = True, validate: bool = False) -> Path:
    """Write ``ROOT/index.html`` from ``ROOT/batch.json``.

    Args:
        root: the batch root.
        job_reports: first write report.html for each job folder that holds a run but no report.
            A job whose report cannot be built keeps a link to its folder; the reason is logged.
        validate: run the asset validators for those reports (slow for large batches).

    Returns:
        The path of index.html.
    """
    root = Path(root)
    batch = read_batch(root)
    if job_reports:
        from .html import write_report

        for job in batch["jobs"]:
            try:
                folder = safe_join(root, job["folder"])
            except OutputError:
                continue
            if (folder / "manifest.json").is_file() and not (folder / "report.html").is_file():
                try:
                    write_report(folder, validate=validate)
                except WorldgenError as e:
                    log.warning("no report for job %s: %s", job["name"], e)
    out = root / INDEX_HTML
    atomic_write(out, render_index(root, batch).encode())
    return out
