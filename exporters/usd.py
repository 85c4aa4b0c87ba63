"""Mesh USD: ``.usda`` / ``.usdc`` (with a texture folder) and an ARKit-safe ``.usdz``.

Stage rules (docs/engines.md): ``upAxis = Y`` and ``metersPerUnit = 1`` (worldgen's frame and
units, so nothing is rotated or scaled), ``defaultPrim = /World`` (an ``assembly``), one
``component`` Xform per part holding its Mesh prim(s) and a ``Looks`` Scope, every prim typed.
Meshes author ``extent``, ``subdivisionScheme = "none"``, vertex ``normals`` and a vertex
``primvars:st`` (USD's st origin is the bottom-left, so v is flipped: st = (u, 1 - v)).
Materials are UsdPreviewSurface (colour from a UsdUVTexture in sRGB, read through a
UsdPrimvarReader_float2 whose ``varname`` is a string), bound with MaterialBindingAPI; with
``unlit`` (the default, baked lighting) the texture drives ``emissiveColor`` over a black diffuse,
otherwise ``diffuseColor``. The
collision part carries UsdPhysics CollisionAPI + MeshCollisionAPI (approximation "none": the
triangle mesh itself) and is invisible (``visibility = invisible``, so no renderer draws it; its
purpose stays "default" because Unreal's USD importer loads only default/proxy/render purposes and
would drop a "guide" prim with its collision). ``/World/sky_light`` is a UsdLux DomeLight whose
latlong texture (``sky_latlong.png``, OpenEXR orientation) is the sky environment (``sky.py``),
packaged inside the usdz. Geometry is fitted to the preset's far plane (``placement.py``). The ``.usdz`` is packaged with
``UsdUtils.CreateNewARKitUsdzPackage`` (usdc root layer first, 64-byte aligned, stored entries).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from worldgen.errors import MissingDependencyError
from worldgen.types import MeshScene

from ._mesh_common import Chunk, Part, prepare_parts
from .settings import ExportSettings
from .sky import encode_png, sky_environment, usd_latlong

ROOT = "/World"


def _pxr():
    try:
        from pxr import Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, Vt
    except ImportError as e:  # pragma: no cover - usd-core is a core dependency
        raise MissingDependencyError("usd-core", "usd", "USD export") from e
    return Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, Vt


def new_stage(path: str | None = None):
    """An empty stage with worldgen's metadata: Y up, metres, default prim /World (assembly)."""
    Gf, Kind, Sdf, Usd, UsdGeom, *_ = _pxr()
    stage = Usd.Stage.CreateNew(path) if path else Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, ROOT)
    Usd.ModelAPI(root.GetPrim()).SetKind(Kind.Tokens.assembly)
    stage.SetDefaultPrim(root.GetPrim())
    return stage


def _define_mesh(stage, path: str, chunk: Chunk):
    Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, Vt = _pxr()
    mesh = UsdGeom.Mesh.Define(stage, path)
    nf = chunk.faces.shape[0]
    mesh.CreatePointsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(chunk.vertices, np.float32)))
    mesh.CreateFaceVertexCountsAttr(Vt.IntArray.FromNumpy(np.full(nf, 3, np.int32)))
    mesh.CreateFaceVertexIndicesAttr(Vt.IntArray.FromNumpy(chunk.faces.reshape(-1).astype(np.int32)))
    mesh.CreateNormalsAttr(Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(chunk.normals, np.float32)))
    mesh.SetNormalsInterpolation(UsdGeom.Tokens.vertex)
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateOrientationAttr(UsdGeom.Tokens.rightHanded)
    lo, hi = chunk.vertices.min(0), chunk.vertices.max(0)
    mesh.CreateExtentAttr(Vt.Vec3fArray([Gf.Vec3f(*map(float, lo)), Gf.Vec3f(*map(float, hi))]))
    return mesh


def _material(stage, looks: str, part: Part, tex_path: str, unlit: bool = False):
    Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, Vt = _pxr()
    mat = UsdShade.Material.Define(stage, f"{looks}/{part.name}_material")
    surf = UsdShade.Shader.Define(stage, f"{mat.GetPath()}/PreviewSurface")
    surf.CreateIdAttr("UsdPreviewSurface")
    surf.CreateInput("roughness", Sdf.ValueTypeNames.Float).Set(0.9)
    surf.CreateInput("metallic", Sdf.ValueTypeNames.Float).Set(0.0)
    surf.CreateInput("useSpecularWorkflow", Sdf.ValueTypeNames.Int).Set(0)
    reader = UsdShade.Shader.Define(stage, f"{mat.GetPath()}/StReader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.String).Set("st")
    reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
    tex = UsdShade.Shader.Define(stage, f"{mat.GetPath()}/BaseColorTexture")
    tex.CreateIdAttr("UsdUVTexture")
    tex.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(Sdf.AssetPath(tex_path))
    tex.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(reader.ConnectableAPI(), "result")
    tex.CreateInput("sourceColorSpace", Sdf.ValueTypeNames.Token).Set("sRGB")
    wrap = "repeat" if part.role == "sky" else "clamp"
    tex.CreateInput("wrapS", Sdf.ValueTypeNames.Token).Set(wrap)
    tex.CreateInput("wrapT", Sdf.ValueTypeNames.Token).Set("clamp")
    tex.CreateOutput("rgb", Sdf.ValueTypeNames.Float3)
    if unlit:
        # Baked lighting: the texture is the emitted colour and the surface reflects nothing, so
        # every renderer (Storm, Blender, Omniverse) shows the panorama's colours whatever lights
        # the scene has (USD has no unlit shading model; this is its usual stand-in).
        surf.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set((0.0, 0.0, 0.0))
        surf.CreateInput("ior", Sdf.ValueTypeNames.Float).Set(1.0)  # no specular glint of the dome
        surf.CreateInput("emissiveColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(tex.ConnectableAPI(), "rgb")
    else:
        surf.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).ConnectToSource(tex.ConnectableAPI(), "rgb")
    mat.CreateSurfaceOutput().ConnectToSource(surf.ConnectableAPI(), "surface")
    return mat


def _tex_name(part: Part) -> str:
    return f"{part.name}_basecolor.{'jpg' if part.texture_mime == 'image/jpeg' else 'png'}"


def build_stage(
    scene: MeshScene, cfg: ExportSettings, path: str | None, tex_dir: str
) -> tuple[object, dict[str, bytes]]:
    """Author the scene on a new stage; returns (stage, {relative texture path: bytes})."""
    Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, Vt = _pxr()
    parts, _ = prepare_parts(scene, cfg, include_collision=cfg.collision != "none")
    stage = new_stage(path)
    textures: dict[str, bytes] = {}
    for part in parts:
        xf = UsdGeom.Xform.Define(stage, f"{ROOT}/{part.name}")
        Usd.ModelAPI(xf.GetPrim()).SetKind(Kind.Tokens.component)
        mat = None
        if part.texture is not None:
            rel = f"{tex_dir}/{_tex_name(part)}"
            textures[rel] = part.texture
            looks = f"{xf.GetPath()}/Looks"
            UsdGeom.Scope.Define(stage, looks)
            mat = _material(stage, looks, part, "./" + rel, cfg.unlit)
        for chunk in part.chunks:
            mesh = _define_mesh(stage, f"{xf.GetPath()}/{chunk.name}", chunk)
            if chunk.uvs is not None and mat is not None:
                st = np.ascontiguousarray(np.c_[chunk.uvs[:, 0], 1.0 - chunk.uvs[:, 1]], np.float32)
                pv = UsdGeom.PrimvarsAPI(mesh).CreatePrimvar(
                    "st", Sdf.ValueTypeNames.TexCoord2fArray, UsdGeom.Tokens.vertex
                )
                pv.Set(Vt.Vec2fArray.FromNumpy(st))
            elif chunk.colors is not None and part.role != "collision":
                mesh.CreateDisplayColorPrimvar(UsdGeom.Tokens.vertex).Set(
                    Vt.Vec3fArray.FromNumpy(np.ascontiguousarray(chunk.colors, np.float32))
                )
            if mat is not None:
                UsdShade.MaterialBindingAPI.Apply(mesh.GetPrim()).Bind(mat)
            if part.role == "collision":
                UsdPhysics.CollisionAPI.Apply(mesh.GetPrim())
                UsdPhysics.MeshCollisionAPI.Apply(mesh.GetPrim()).CreateApproximationAttr(UsdPhysics.Tokens.none)
                mesh.CreateVisibilityAttr(UsdGeom.Tokens.invisible)
    env = sky_environment(scene, cfg)
    if env is not None:
        from pxr import UsdLux

        rel = f"{tex_dir}/sky_latlong.png"
        textures[rel] = encode_png(usd_latlong(env))
        light = UsdLux.DomeLight.Define(stage, f"{ROOT}/sky_light")
        light.CreateTextureFileAttr(Sdf.AssetPath("./" + rel))
        light.CreateTextureFormatAttr(UsdLux.Tokens.latlong)
        light.CreateIntensityAttr(1.0)
    return stage, textures


def _write_layer(scene: MeshScene, cfg: ExportSettings | None, name: str) -> dict[str, bytes]:
    cfg = cfg or ExportSettings()
    stem = Path(name).stem
    with tempfile.TemporaryDirectory(prefix="wg-usd-") as tmp:
        stage, textures = build_stage(scene, cfg, str(Path(tmp) / name), f"{stem}_textures")
        stage.GetRootLayer().Save()
        out = {name: (Path(tmp) / name).read_bytes()}
    out.update(textures)
    return out


def export_usda(scene: MeshScene, cfg: ExportSettings | None = None) -> dict[str, bytes]:
    """``world.usda`` plus ``world_textures/<part>_basecolor.<ext>`` (relative asset paths)."""
    return _write_layer(scene, cfg, "world.usda")


def export_usdc(scene: MeshScene, cfg: ExportSettings | None = None) -> dict[str, bytes]:
    """``world.usdc`` (binary crate) plus ``world_textures/`` as :func:`export_usda`."""
    return _write_layer(scene, cfg, "world.usdc")


def package_usdz(layer_files: dict[str, bytes], root_name: str) -> bytes:
    """ARKit-safe usdz of a root layer and its files, via UsdUtils (aligned, root first)."""
    Gf, Kind, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade, UsdUtils, Vt = _pxr()
    with tempfile.TemporaryDirectory(prefix="wg-usdz-") as tmp:
        for rel, data in layer_files.items():
            p = Path(tmp) / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            # The zip entries take the files' modification times: fix them so equal scenes
            # give equal bytes (2000-01-01, inside the DOS date range).
            os.utime(p, (946684800, 946684800))
        out = Path(tmp) / (Path(root_name).stem + ".usdz")
        if not UsdUtils.CreateNewARKitUsdzPackage(Sdf.AssetPath(str(Path(tmp) / root_name)), str(out)):
            from worldgen.errors import OutputError

            raise OutputError("UsdUtils could not package the usdz (see the USD log above)")
        return out.read_bytes()


def export_usdz(scene: MeshScene, cfg: ExportSettings | None = None) -> bytes:
    """``world.usdz``: the usdc layer and its textures in one ARKit-safe package."""
    return package_usdz(export_usdc(scene, cfg), "world.usdc")


from .registry import Format, register_format  # noqa: E402

register_format(
    Format(
        "usdz",
        "mesh",
        "world.usdz",
        export_usdz,
        "ARKit-safe USDZ mesh: Omniverse, Unreal USD, Apple Quick Look, Blender",
    )
)
register_format(Format("usdc", "mesh", "world.usdc", export_usdc, "binary USD mesh with a world_textures/ folder"))
register_format(
    Format("usda", "mesh", "world.usda", export_usda, "text USD mesh with a world_textures/ folder (readable, large)")
)
