"""`worldgen batch`: build many worlds from a job file, on local workers or a Ray cluster."""

from __future__ import annotations

import contextlib
import shlex
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from worldgen.batch import JobFileError, LocalExecutor, Policy, default_workers, load_jobs, run_batch
from worldgen.batch.jobs import Job
from worldgen.batch.run import BatchResult

from . import _console
from ._logging import setup_logging
from ._options import QuietOpt, VerboseOpt

TABLE_ROWS = 40
"""Rows of the final table; longer batches list the jobs that did not finish and count the rest."""


def batch(
    jobs_file: Annotated[Path, typer.Argument(metavar="JOBS", help="Job file: .yaml, .jsonl or .csv (docs/batch.md).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Batch root: each job writes ROOT/NAME.")],
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", "-j", min=1, help="Local worker processes; default from cores and memory.", show_default=False
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="local (worker processes here) or ray (a Ray cluster).")
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="Ray cluster: auto (the one started with 'ray start') or ray://HOST:PORT.",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.001, help="Seconds one job may run before it is stopped.", show_default=False),
    ] = None,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Extra attempts after a crash or unexpected error.")
    ] = 1,
    backoff: Annotated[
        float, typer.Option("--backoff", min=0.0, help="Seconds before the first retry; doubles after.")
    ] = 2.0,
    cpus_per_job: Annotated[float, typer.Option("--cpus-per-job", min=0.01, help="Ray: CPUs each job asks for.")] = 1.0,
    memory_per_job: Annotated[
        float | None,
        typer.Option("--memory-per-job", min=0.01, help="Ray: GiB of memory each job asks for.", show_default=False),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Check the job file and show what would run; run nothing.")
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Run every job of JOBS into ROOT/NAME; a re-run skips finished jobs and resumes interrupted ones."""
    setup_logging(verbose, quiet)
    if executor not in ("local", "ray"):
        raise typer.BadParameter(f"{executor!r} is not an executor; use local or ray", param_hint="--executor")
    if address is not None and executor != "ray":
        raise typer.BadParameter("--address is for --executor ray", param_hint="--address")
    if workers is not None and executor == "ray":
        raise typer.BadParameter(
            "--workers is for the local executor; Ray sizes by --cpus-per-job", param_hint="--workers"
        )
    try:
        if check:
            _check(jobs_file, out)
            return
        if executor == "ray":
            from worldgen.batch.ray_executor import RayExecutor

            ex: Any = RayExecutor(address=address, cpus_per_job=cpus_per_job, memory_gb=memory_per_job)
        else:
            ex = LocalExecutor(workers or default_workers())
        policy = Policy(timeout=timeout, retries=retries, backoff=backoff)
        with _sigterm_as_interrupt():
            result = _run(jobs_file, out, ex, policy, quiet)
    except JobFileError as e:
        for line in e.errors[:50]:
            _console.err.print(f"[bold red]error:[/] {escape(line)}", soft_wrap=True)
        if len(e.errors) > 50:
            _console.err.print(f"... and {len(e.errors) - 50} more problems")
        _console.err.print(f"{len(e.errors)} problem(s) in {jobs_file}; nothing was run", soft_wrap=True, markup=False)
        raise typer.Exit(2) from None
    if not quiet:
        _table(result)
    _write_index(result.root, quiet)
    _console.out.print(str(result.root / "batch.json"))
    resume = f"worldgen batch {shlex.quote(str(jobs_file))} -o {shlex.quote(str(out))}"
    counts = result.counts()
    if result.interrupted:
        _console.err.print(
            f"[red]interrupted[/]: {counts.get('done', 0) + counts.get('skipped', 0)} of {len(result.jobs)} jobs finished; "
            f"run the same command again to resume: {resume}",
            soft_wrap=True,
        )
        raise typer.Exit(130)
    bad = counts.get("failed", 0) + counts.get("timeout", 0)
    if bad:
        _console.err.print(
            f"[bold red]{bad} of {len(result.jobs)} jobs failed[/]; see their job.log; fix and re-run: {resume}",
            soft_wrap=True,
        )
        raise typer.Exit(1)


def _write_index(root: Path, quiet: bool) -> None:
    """ROOT/index.html: every job's thumbnail, status, time and error, linking to its report.html
    (the workers write those; jobs finished by an older worldgen get theirs now)."""
    from worldgen.errors import WorldgenError
    from worldgen.report.batch import write_batch_index

    try:
        path = write_batch_index(root, job_reports=True, validate=False)
    except WorldgenError as e:  # the batch ran; an index that fails must not change its outcome
        _console.err.print(f"[yellow]warning:[/] no batch index: {str(e).splitlines()[0]}", soft_wrap=True)
        return
    if not quiet:
        _console.err.print(f"review the batch: {path}", soft_wrap=True, markup=False)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops the batch as Ctrl-C does (workers stopped, state written) instead of leaving
    the workers running without their driver."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _check(jobs_file: Path, out: Path) -> None:
    from worldgen.batch.state import finished_record

    jobs = load_jobs(jobs_file)
    root = out.resolve()
    finished = sum(finished_record(root, j) is not None for j in jobs) if root.is_dir() else 0
    _console.err.print(
        f"{jobs_file}: {len(jobs)} jobs, all valid; {finished} already finished, {len(jobs) - finished} to run",
        soft_wrap=True,
        markup=False,
    )


def _run(jobs_file: Path, out: Path, ex: Any, policy: Policy, quiet: bool) -> BatchResult:
    if quiet or not _console.err.is_terminal:
        # No live display where nobody watches it (a log file, CI): one line per finished job instead.
        def event(kind: str, job: Job, info: dict) -> None:
            if kind == "end" and not quiet:
                _console.err.print(_line(job, info), soft_wrap=True, markup=False)

        return run_batch(jobs_file, out, ex, policy, on_event=event)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(
            "[green]{task.fields[done]} done[/] [red]{task.fields[failed]} failed[/] {task.fields[running]} running"
        ),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[now]}"),
        console=_console.err,
        transient=False,
    )
    state: dict[str, Any] = {"done": 0, "failed": 0, "running": {}}
    task = progress.add_task("batch", total=None, done=0, failed=0, running=0, now="checking the job file")

    def refresh() -> None:
        running = state["running"]
        now = ", ".join(f"{n}:{s}" for n, s in list(running.items())[:3]) + (" ..." if len(running) > 3 else "")
        progress.update(task, done=state["done"], failed=state["failed"], running=len(running), now=now)

    def plan(jobs: list[Job], skipped: list[str]) -> None:
        state["done"] = len(skipped)
        progress.update(task, total=len(jobs) - len(skipped), completed=0)
        refresh()

    def event(kind: str, job: Job, info: dict) -> None:
        if kind == "start":
            state["running"][job.name] = "starting"
        elif kind == "progress":
            state["running"][job.name] = info.get("stage") or "?"
        elif kind == "retry":
            state["running"].pop(job.name, None)
            progress.console.print(f"retry {job.name} in {info['delay']:.0f} s: {info['error']}", markup=False)
        elif kind == "end":
            state["running"].pop(job.name, None)
            key = "done" if info["status"] == "done" else "failed"
            state[key] += 1
            progress.advance(task)
            if key == "failed":
                progress.console.print(_line(job, info), markup=False, soft_wrap=True)
        refresh()

    with progress:
        return run_batch(jobs_file, out, ex, policy, on_event=event, on_plan=plan)


def _line(job: Job, info: dict) -> str:
    tail = f": {info['error']}" if info.get("error") else ""
    return f"{info['status']:<8} {job.name} ({info['seconds']:.1f} s, attempt {info['attempts']}){tail}"


def _table(result: BatchResult) -> None:
    entries = list(result.entries.values())
    shown = entries if len(entries) <= TABLE_ROWS else [e for e in entries if e["status"] not in ("done", "skipped")]
    table = Table(title=f"worldgen batch in {result.root}", title_justify="left")
    for col in ("job", "status", "attempts", "time", "folder / error"):
        table.add_column(col, overflow="fold")
    style = {"done": "green", "skipped": "dim", "failed": "red", "timeout": "red", "interrupted": "yellow"}
    for e in shown[:TABLE_ROWS]:
        table.add_row(
            escape(e["name"]),
            f"[{style.get(e['status'], '')}]{e['status']}[/]",
            str(e["attempts"]),
            f"{e['seconds']:.1f} s" if e["seconds"] else "-",
            escape(e["error"] or e["folder"]),
        )
    _console.err.print(table)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(result.counts().items()))
    more = f" ({len(shown) - TABLE_ROWS} more not shown)" if len(shown) > TABLE_ROWS else ""
    _console.err.print(
        f"{len(entries)} jobs: {counts}{more}; per-job state in {result.root / 'batch.json'}", markup=False
    )
