"""Pictures and reports of runs: previews, fly-throughs, report.html, the batch index, the viewer.

Public API:
    make_previews(run_dir) -> record (preview.png, flythrough.mp4/.gif, previews.json);
    write_report(run_dir) -> path of report.html; write_batch_index(root) -> path of index.html.
Nothing here is a pipeline stage: reports hold run times, which must not enter the stage cache.
"""

from .previews import PreviewConfig, make_previews, read_previews

__all__ = ["PreviewConfig", "make_previews", "read_previews"]
