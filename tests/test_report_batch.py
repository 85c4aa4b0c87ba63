"""The batch index (index.html from ROOT/batch.json), checked in headless Chromium."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from _chromium import dump_dom, resembles, screenshot
from PIL import Image

from worldgen.cli.main import main
from worldgen.report.batch import write_batch_index


@pytest.fixture(scope="module")
def batch_root(tiny_run, tmp_path_factory):
    """A hand-made batch: two finished jobs (copies of the tiny run; one without a report yet),
    a failed one, a pending one, and one whose folder tries to escape the root."""
    root = tmp_path_factory.mktemp("batch")
    shutil.copytree(tiny_run, root / "jobs" / "forest")
    shutil.copytree(tiny_run, root / "jobs" / "forest-again")
    (root / "jobs" / "forest-again" / "report.html").unlink()
    (root / "jobs" / "broken").mkdir(parents=True)
    jobs = [
        {
            "name": "forest",
            "folder": "jobs/forest",
            "status": "done",
            "seconds": 12.5,
            "attempts": 1,
            "outputs": ["world.glb"],
            "error": None,
        },
        {
            "name": "forest-again",
            "folder": "jobs/forest-again",
            "status": "done",
            "seconds": 3.25,
            "attempts": 1,
            "outputs": [],
            "error": None,
        },
        {
            "name": "broken <b>",
            "folder": "jobs/broken",
            "status": "failed",
            "seconds": 0.5,
            "attempts": 2,
            "outputs": [],
            "error": "panorama is 100x100 but must be 2:1",
        },
        {
            "name": "later",
            "folder": "jobs/later",
            "status": "pending",
            "seconds": 0.0,
            "attempts": 0,
            "outputs": [],
            "error": None,
        },
        {
            "name": "escape",
            "folder": "../outside",
            "status": "skipped",
            "seconds": 0.0,
            "attempts": 0,
            "outputs": [],
            "error": "skipped",
        },
    ]
    batch = {
        "format": 1,
        "jobs_file": "jobs.txt",
        "root": str(root),
        "started": "2026-01-01T00:00:00",
        "finished": "2026-01-01T00:01:00",
        "jobs": jobs,
    }
    (root / "batch.json").write_text(json.dumps(batch))
    assert main(["report", str(root), "--no-validate", "-q"]) == 0
    return root


def test_index_lists_every_job_and_links_reports(batch_root):
    page = (batch_root / "index.html").read_text()
    assert page.count("class='card'") == 5
    assert "href='jobs/forest/report.html'" in page
    assert (batch_root / "jobs" / "forest-again" / "report.html").is_file()  # built for the index
    assert "href='jobs/forest-again/report.html'" in page
    assert "broken &lt;b&gt;" in page and "<b>" not in page.replace("<b>'", "")  # names are escaped
    assert "panorama is 100x100 but must be 2:1" in page
    assert "href='../outside" not in page  # a folder outside the root is never linked
    assert page.count("data:image/jpeg;base64,") == 2  # thumbnails embedded: the index opens anywhere


def test_index_shows_thumbnails_in_chromium(batch_root, tmp_path, tiny_run):
    shot = screenshot((batch_root / "index.html").as_uri(), tmp_path / "index.png", size=(1100, 700), wait_ms=1000)
    assert shot.std() > 20
    pano = np.asarray(Image.open(tiny_run / "panorama.png").convert("RGB"))
    assert resembles(shot, pano) > 0.3


def test_index_filters_and_sorts_by_status(batch_root):
    url = (batch_root / "index.html").as_uri()
    dom = dump_dom(url + "#status=failed")
    assert "1 shown" in dom
    dom = dump_dom(url + "#sort=seconds")
    assert "5 shown" in dom
    assert dom.index('data-name="forest"') < dom.index('data-name="forest-again"') < dom.index('data-name="broken')


@pytest.mark.parametrize(
    "bad", ["{", '{"format": 2, "jobs": []}', '{"format": 1, "jobs": [{"name": "a", "folder": "a", "status": "odd"}]}']
)
def test_bad_batch_file_is_one_line(tmp_path, capsys, bad):
    (tmp_path / "batch.json").write_text(bad)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "batch.json" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "index.html").exists()


def test_write_batch_index_without_job_reports(batch_root, tmp_path):
    root = tmp_path / "b"
    root.mkdir()
    (root / "batch.json").write_text((batch_root / "batch.json").read_text())
    out = write_batch_index(root, job_reports=False)
    assert out.read_text().count("class='card'") == 5 and "no panorama" in out.read_text()
