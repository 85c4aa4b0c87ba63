"""Formats registered by name: each writer module registers itself at its end.

A :class:`Format` maps a name (``--format`` value) to the writer, the kind of value it takes
("mesh" -> MeshScene, "splats" -> GaussianCloud) and the file name it writes.
:func:`export_assets` is the one dispatcher: it turns values into ``{file name: bytes}``;
callers (the pipeline runner, :func:`worldgen.exporters.export_run`) do the file writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from worldgen.errors import InputError
from worldgen.types import GaussianCloud, MeshScene

from .settings import ExportSettings


@dataclass(frozen=True)
class Format:
    """One output format.

    Args:
        name: what users type after ``--format``.
        kind: "mesh" (takes a MeshScene) or "splats" (takes a GaussianCloud).
        filename: the file written in the run folder.
        export: ``(value, settings) -> bytes`` or ``-> dict[str, bytes]`` (several files, keyed by
            relative name, one of them ``filename``).
        summary: one line for ``worldgen export --help`` and the docs.
    """

    name: str
    kind: str
    filename: str
    export: Callable[[Any, ExportSettings], bytes | dict[str, bytes]]
    summary: str

    @property
    def suffix(self) -> str:
        return "." + self.filename.rsplit(".", 1)[-1]


FORMATS: dict[str, Format] = {}


def register_format(fmt: Format) -> Format:
    if fmt.kind not in ("mesh", "splats"):
        raise ValueError(f"format {fmt.name!r}: kind must be 'mesh' or 'splats'")
    FORMATS[fmt.name] = fmt
    return fmt


def available_formats() -> list[str]:
    """Registered format names, in registration order."""
    return list(FORMATS)


def get_format(name: str) -> Format:
    """The format called ``name``; InputError naming the choices otherwise."""
    fmt = FORMATS.get(name.strip().lower())
    if fmt is None:
        raise InputError(f"unknown export format {name!r}; choose from: {', '.join(FORMATS)}")
    return fmt


def formats_for_suffix(suffix: str) -> list[Format]:
    """Formats writing files that end in ``suffix`` (".glb" -> mesh GLB and splat GLB)."""
    s = suffix.lower() if suffix.startswith(".") else "." + suffix.lower()
    return [f for f in FORMATS.values() if f.suffix == s]


def export_assets(
    mesh: MeshScene | None,
    gaussians: GaussianCloud | None,
    formats: Iterable[str],
    settings: ExportSettings | None = None,
) -> tuple[dict[str, bytes], dict]:
    """Write every requested format that has its input; returns (files, report).

    Args:
        mesh: the world's meshes, or None when the run made none.
        gaussians: the world's splats, or None.
        formats: format names (see :func:`available_formats`).
        settings: resolved engine settings (default: the "default" engine).

    Returns:
        ``{relative file name: bytes}`` and a JSON report: which files, which formats were
        skipped for lack of input, the settings used.
    """
    settings = settings or ExportSettings()
    fmts = [get_format(n) for n in dict.fromkeys(formats)]
    if mesh is None and gaussians is None:
        raise InputError(
            "nothing to export: the run has neither a mesh nor gaussians; run the mesh or gaussians stage first"
        )
    files: dict[str, bytes] = {}
    skipped: dict[str, str] = {}
    splat_report = None
    if gaussians is not None and any(f.kind == "splats" for f in fmts):
        from .placement import fit_cloud

        gaussians, splat_report = fit_cloud(gaussians, settings.far_plane)
    for fmt in fmts:
        value = mesh if fmt.kind == "mesh" else gaussians
        if value is None:
            skipped[fmt.name] = f"no {'mesh' if fmt.kind == 'mesh' else 'gaussians'} in this run"
            continue
        out = fmt.export(value, settings)
        files.update(out if isinstance(out, dict) else {fmt.filename: out})
    if (
        mesh is not None
        and settings.collision == "file"
        and "collision" in mesh
        and any(f.kind == "mesh" for f in fmts)
    ):
        from .gltf import export_collision_glb

        files["collision.glb"] = export_collision_glb(mesh, settings)
    mesh_written = mesh is not None and any(f.kind == "mesh" for f in fmts)
    if mesh_written:
        from .placement import fit_far_plane
        from .sky import sky_files

        sky = sky_files(mesh, settings)
        files.update(sky)
        placement_report = fit_far_plane(mesh, settings.far_plane)[1]
        placement_report["environment"] = sorted(sky) or None
    report = {
        "files": {k: len(v) for k, v in files.items()},
        "skipped": skipped,
        "engine": settings.engine,
        "settings": _settings_dict(settings),
    }
    if mesh_written:
        report["placement"] = placement_report
    if mesh is not None:
        report["mesh_triangles"] = {k: m.n_faces for k, m in mesh.parts.items()}
    if gaussians is not None:
        report["splats"] = len(gaussians)
    if splat_report is not None:
        report["splat_placement"] = splat_report
    return files, report


def _settings_dict(s: ExportSettings) -> dict:
    import dataclasses

    return dataclasses.asdict(s)
