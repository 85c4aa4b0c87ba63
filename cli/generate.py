"""`worldgen generate`: build a world from a prompt, a photo or a panorama."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from worldgen.errors import InputError
from worldgen.models import load_user_config, resolve_models
from worldgen.overrides import parse_backends, parse_options
from worldgen.pipeline import RunOptions, StageRecord, check_request, run_pipeline
from worldgen.registry import STAGES, Request

from . import _console
from ._logging import setup_logging
from ._options import OutOpt, QuietOpt, SeedOpt, VerboseOpt

PRESET_HELP = "fast: no splat refinement, smaller images; balanced: the default; quality: slowest, best."


def generate(
    prompt: Annotated[
        str | None, typer.Argument(help="Text prompt, e.g. 'a pine forest by a lake at dawn'.", show_default=False)
    ] = None,
    out: OutOpt = Path("out"),
    image: Annotated[
        Path | None, typer.Option("--image", help="A photo to turn into a 360° world.", show_default=False)
    ] = None,
    panorama: Annotated[
        Path | None,
        typer.Option(
            "--panorama",
            help="A 2:1 equirectangular panorama, or a partial one with photo-sphere (GPano) metadata.",
            show_default=False,
        ),
    ] = None,
    depth: Annotated[
        Path | None,
        typer.Option(
            "--depth", help="Depth for --panorama: .exr/.npy in metres or 16-bit .png in mm.", show_default=False
        ),
    ] = None,
    spec: Annotated[
        Path | None,
        typer.Option(
            "--spec", help="An edited SceneSpec JSON (procedural worlds) instead of a prompt.", show_default=False
        ),
    ] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Print how the prompt was read, then build.")] = False,
    seed: SeedOpt = 0,
    preset: Annotated[str, typer.Option("--preset", help=PRESET_HELP)] = "balanced",
    until: Annotated[str, typer.Option("--until", help=f"Last stage to run: {', '.join(STAGES)}.")] = "export",
    rerun_from: Annotated[
        str | None, typer.Option("--from", help="Re-run this stage and all later ones.", show_default=False)
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run every stage, ignoring the cache.")] = False,
    eye_height: Annotated[float, typer.Option("--eye-height", help="Camera height above the ground, metres.")] = 1.6,
    max_splats: Annotated[
        int | None, typer.Option("--max-splats", min=1, help="Merge Gaussians down to this budget.", show_default=False)
    ] = None,
    walk_radius: Annotated[
        float | None,
        typer.Option(
            "--walk-radius",
            min=0.0,
            help="Metres a viewer may walk from the capture point; surfaces hidden behind depth edges are "
            "completed that far for the mesh and the splats (default 2; 0 = off).",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine", help="Export preset: unity, unreal, godot, blender, omniverse or web.", show_default=False
        ),
    ] = None,
    formats: Annotated[
        list[str] | None,
        typer.Option(
            "--format",
            "-f",
            help="Export format (repeatable), e.g. glb, usdz, ply, spz; default: the engine's set.",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[
        list[str] | None,
        typer.Option("--backend", "-b", help="STAGE=NAME, e.g. mesh=tsdf (see 'worldgen stages').", show_default=False),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--set", "-s", help="STAGE.FIELD=VALUE backend option, e.g. mesh.max_triangles=100000.", show_default=False
        ),
    ] = None,
    max_memory: Annotated[
        float | None,
        typer.Option(
            "--max-memory",
            min=0.1,
            help="Most memory the run may use, GB (default: what the system has free); a stage that "
            "would need more is scaled down with a note or refused before it starts.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="ROLE=ID|PATH: a model for a role (depth, panorama, fill, segmentation), a Hugging Face id "
            "in the local cache or a local folder; repeatable; overrides worldgen.toml.",
            show_default=False,
        ),
    ] = None,
    fov: Annotated[
        float | None,
        typer.Option(
            "--fov", help="Horizontal field of view of --image, degrees (default: from EXIF).", show_default=False
        ),
    ] = None,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Build a 3D world and export it; re-running reuses every stage whose inputs did not change."""
    setup_logging(verbose, quiet)
    user_config = load_user_config()
    models = resolve_models(model or [], user_config)
    backends = _parse_backends(backend or [])
    options = _parse_options(option or [])
    if max_splats is not None:
        options.setdefault("gaussians", {})["max_splats"] = max_splats
    if walk_radius is not None:
        # The backends that complete hidden surfaces: the sheet mesh and the refined splats.
        if backends.get("mesh", "sheet") == "sheet":
            options.setdefault("mesh", {})["walk_radius"] = walk_radius
        if backends.get("gaussians", "refine") == "refine":
            options.setdefault("gaussians", {})["walk_radius"] = walk_radius
    if engine is not None:
        options.setdefault("export", {})["engine"] = engine
    if formats:
        options.setdefault("export", {})["formats"] = tuple(formats)
    request = Request(
        prompt=prompt,
        image=str(image) if image else None,
        panorama=str(panorama) if panorama else None,
        depth=str(depth) if depth else None,
        spec=str(spec) if spec else None,
        seed=seed,
        eye_height=eye_height,
        preset=preset,
        fov=fov,
    )
    run_opts = RunOptions(
        until=until,
        rerun_from=rerun_from,
        force=force,
        backends=backends,
        options=options,
        models=models,
        defaults=user_config.backend_options,
        max_memory_gb=max_memory,
    )
    check_request(request, run_opts)
    if explain:
        _explain(request)
    t0 = time.perf_counter()
    if quiet:
        result = run_pipeline(request, out, run_opts)
    else:
        result = _run_with_progress(request, out, run_opts)
    if not quiet:
        _summary(result.stages, result.out_dir, time.perf_counter() - t0)
    _write_report(result.out_dir, quiet)
    _console.out.print(str(result.out_dir))


def _write_report(out_dir: Path, quiet: bool) -> None:
    """report.html and previews (worldgen.report), after the run: they hold run times, so they stay
    outside the stage cache; previews are reused while the artifacts they show are unchanged.
    The asset validators take longer than a fast run (node, USD rules): `worldgen report` runs them."""
    from worldgen.errors import WorldgenError
    from worldgen.report.html import write_report

    try:
        path = write_report(out_dir, validate=False)
    except WorldgenError as e:  # the world is built; a report that fails must not fail the run
        _console.err.print(f"[yellow]warning:[/] no report: {str(e).splitlines()[0]}", soft_wrap=True)
        return
    if not quiet:
        _console.err.print(f"report: {path}")


def _explain(request: Request) -> None:
    if request.prompt is None:
        raise InputError("--explain reads a text prompt; give one")
    try:
        from worldgen.procedural import explain
    except ImportError as e:
        raise InputError("--explain needs the procedural synthesizer, which is not installed") from e
    _console.err.print(explain(request.prompt, request.seed))


def _parse_backends(items: list[str]) -> dict[str, str]:
    try:
        return parse_backends(items)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--backend") from e


def _parse_options(items: list[str]) -> dict[str, dict]:
    try:
        return parse_options(items)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--set") from e


def _run_with_progress(request: Request, out: Path, run_opts: RunOptions):
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[stage]:<9}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[msg]}"),
        console=_console.err,
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def task(stage: str) -> TaskID:
        if stage not in tasks:
            tasks[stage] = progress.add_task(stage, total=1.0, stage=stage, msg="")
        return tasks[stage]

    def on_progress(stage: str, fraction: float, message: str) -> None:
        progress.update(task(stage), completed=fraction, msg=message)

    def on_stage(rec: StageRecord) -> None:
        t = task(rec.stage)
        label = {
            "ran": f"{rec.backend}: done in {rec.seconds:.1f} s",
            "cached": f"{rec.backend}: reused (cached)",
            "skipped": rec.note,
        }[rec.status]
        progress.update(t, completed=1.0, msg=label)
        progress.stop_task(t)

    with progress:
        return run_pipeline(request, out, run_opts, progress=on_progress, on_stage=on_stage)


def _summary(records: list[StageRecord], out_dir: Path, seconds: float) -> None:
    table = Table(title=f"worldgen run in {out_dir}", title_justify="left")
    for col in ("stage", "backend", "status", "time", "peak RSS", "files"):
        table.add_column(col)
    for r in records:
        table.add_row(
            r.stage,
            r.backend or "-",
            r.status,
            f"{r.seconds:.2f} s" if r.status == "ran" else "-",
            f"{r.peak_rss_mb:.0f} MB" if r.peak_rss_mb else "-",
            ", ".join(r.files) if r.files else (r.note or "-"),
        )
    _console.err.print(table)
    _console.err.print(f"total {seconds:.2f} s; manifest: {out_dir / 'manifest.json'}")
