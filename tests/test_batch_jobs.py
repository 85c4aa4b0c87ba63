"""Job files: the three formats, defaults, and every problem reported with file, line and field."""

from __future__ import annotations

import json

import numpy as np
import pytest

from worldgen.batch.jobs import MAX_VALUES, Job, JobFileError, load_jobs
from worldgen.io import encode_png
from worldgen.overrides import parse_options


def _write(path, text):
    path.write_text(text)
    return path


@pytest.fixture
def pano(tmp_path):
    p = tmp_path / "pano.png"
    p.write_bytes(encode_png(np.zeros((32, 64, 3), np.uint8)))
    return p


def test_yaml_defaults_and_overrides(tmp_path, pano):
    f = _write(
        tmp_path / "jobs.yaml",
        """
defaults:
  preset: fast
  seed: 7
  set: {gaussians.max_splats: 5000, mesh: {max_triangles: 1000}}
  format: [glb, ply]
jobs:
  - name: forest
    prompt: a pine forest
  - name: beach
    panorama: pano.png
    seed: 3
    set: ["mesh.max_triangles=2000"]
    engine: unity
    backend: {depth: layout}
""",
    )
    forest, beach = load_jobs(f)
    assert forest.request.prompt == "a pine forest" and forest.request.seed == 7 and forest.request.preset == "fast"
    assert forest.options["gaussians"] == {"max_splats": 5000} and forest.options["mesh"] == {"max_triangles": 1000}
    assert forest.options["export"]["formats"] == ("glb", "ply")
    assert forest.source == f"{f}:8" and forest.folder == "forest"
    assert beach.request.panorama == str(pano) and beach.request.seed == 3
    # the job's set entries merge over the defaults' entries
    assert beach.options["mesh"] == {"max_triangles": 2000} and beach.options["gaussians"] == {"max_splats": 5000}
    assert beach.options["export"]["engine"] == "unity" and beach.backends == {"depth": "layout"}
    assert Job.from_json(json.loads(json.dumps(beach.to_json()))) == beach


def test_set_values_parse_like_generate(tmp_path):
    items = ['export.formats=["glb"]', "mesh.max_triangles=1000", "gaussians.max_splats=100"]
    f = _write(tmp_path / "j.jsonl", json.dumps({"name": "a", "prompt": "x", "set": items}) + "\n")
    (job,) = load_jobs(f)
    assert job.options == parse_options(items)  # the parser behind `worldgen generate --set`


def test_jsonl_and_csv(tmp_path):
    jl = _write(
        tmp_path / "j.jsonl",
        '{"defaults": {"preset": "fast"}}\n# a comment\n\n{"name": "a", "prompt": "x", "seed": 1}\n'
        '{"name": "b", "prompt": "y", "formats": "glb,usdz"}\n',
    )
    a, b = load_jobs(jl)
    assert a.request.preset == b.request.preset == "fast" and a.source.endswith(":4")
    assert b.options["export"]["formats"] == ("glb", "usdz")
    csv = _write(
        tmp_path / "j.csv",
        'name,prompt,seed,set,backend,gpu\n"c, the first",a lake,3,panorama.width=128;mesh.max_triangles=500,mesh=sheet,no\n'
        "d,a hill,,,,\n",
    )
    c, d = load_jobs(csv)
    assert c.name == "c, the first" and c.folder == "c_the_first" and c.request.seed == 3
    assert c.options == {"panorama": {"width": 128}, "mesh": {"max_triangles": 500}}
    assert c.backends == {"mesh": "sheet"} and c.gpu == "no" and d.request.seed == 0 and d.source.endswith(":3")


def _errors(path) -> list[str]:
    with pytest.raises(JobFileError) as e:
        load_jobs(path)
    return e.value.errors


def test_every_problem_named_with_file_line_and_field(tmp_path):
    f = _write(
        tmp_path / "bad.yaml",
        """jobs:
  - name: a
    prompt: x
    seed: -1
    sed: 3
  - name: A
    prompt: y
  - name: c
    panorama: missing.png
  - prompt: no name
  - name: d
    prompt: x
    set: {mesh.no_such_option: 3}
  - name: e
    prompt: x
    out: elsewhere
  - name: f
""",
    )
    errors = _errors(f)
    text = "\n".join(errors)
    assert f"{f}:4: job 'a': field 'seed'" in text
    assert f"{f}:5: job 'a': field 'sed': unknown" in text
    assert f"{f}:6: job 'A': field 'name': uses the same folder" in text  # differs only by case
    assert f"{f}:9: job 'c': field 'panorama': file 'missing.png' does not exist" in text
    assert f"{f}:10: job: field 'name': missing" in text
    assert f"{f}:11: job 'd': " in text and "no_such_option" in text
    assert f"{f}:16: job 'e': field 'out': is not a job field" in text
    assert f"{f}:17: job 'f': no input" in text


def test_defaults_errors_and_types(tmp_path):
    f = _write(
        tmp_path / "d.yaml", "defaults:\n  preset: fastest\n  name: x\njobs:\n  - {name: a, prompt: x, seed: yes}\n"
    )
    text = "\n".join(_errors(f))
    assert f"{f}:3: defaults: field 'name'" in text
    assert f"{f}:2: job 'a': field 'preset': unknown preset 'fastest'" in text
    assert f"{f}:5: job 'a': field 'seed': must be a whole number, got true/false" in text


def test_yaml_never_builds_objects(tmp_path):
    f = _write(tmp_path / "t.yaml", 'jobs:\n  - name: !!python/object/apply:os.system ["touch pwned"]\n    prompt: x\n')
    (err,) = _errors(f)
    assert err.startswith(f"{f}:2: not valid YAML") and not (tmp_path / "pwned").exists()


def test_alias_bomb_and_cycles_refused(tmp_path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev = chr(ord("a") + i - 1)
        lines.append(f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [" + ",".join([f"*{prev}"] * 10) + "]")
    assert MAX_VALUES < 10**9
    (err,) = _errors(_write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n"))
    assert "alias bomb" in err and err.startswith(str(tmp_path / "bomb.yaml"))
    (err,) = _errors(_write(tmp_path / "cyc.yaml", "jobs: &a [*a]\n"))
    assert "refers to itself" in err
    deep = "jobs: " + "[" * 5000 + "]" * 5000 + "\n"
    (err,) = _errors(_write(tmp_path / "deep.yaml", deep))
    assert "nests too deeply" in err or "not valid YAML" in err


def test_legit_aliases_work(tmp_path):
    f = _write(
        tmp_path / "a.yaml",
        "jobs:\n  - &j {name: a, prompt: x, preset: fast}\n  - {<<: *j, name: b, seed: 2}\n",
    )
    a, b = load_jobs(f)
    assert b.request.preset == "fast" and b.request.prompt == "x" and b.request.seed == 2


def test_file_level_problems(tmp_path):
    with pytest.raises(Exception, match="must end in"):
        load_jobs(_write(tmp_path / "j.txt", ""))
    assert "holds no jobs" in _errors(_write(tmp_path / "e.yaml", ""))[0]
    assert "not valid JSON" in _errors(_write(tmp_path / "j.jsonl", "{nope\n"))[0]
    assert "unknown top-level key" in _errors(_write(tmp_path / "k.yaml", "job: []\n"))[0]
    f = _write(tmp_path / "x.csv", "name,prompt\na,x,extra\n")
    assert f"{f}:2: 3 cells" in _errors(f)[0]


def test_key_ignores_name_and_paths_but_not_options(tmp_path, pano):
    f = _write(
        tmp_path / "k.yaml",
        "jobs:\n  - {name: a, panorama: pano.png}\n  - {name: b, panorama: " + str(pano) + "}\n"
        "  - {name: c, panorama: pano.png, seed: 1}\n",
    )
    a, b, c = load_jobs(f)
    assert a.key == b.key != c.key


def test_model_field_resolved_relative_to_the_job_file(tmp_path, monkeypatch):
    from safetensors.numpy import save_file

    monkeypatch.chdir(tmp_path)  # no worldgen.toml here
    (tmp_path / "depth-model").mkdir()
    (tmp_path / "depth-model" / "config.json").write_text(json.dumps({"model_type": "depth_anything"}))
    save_file({"w": np.zeros(2, np.float32)}, str(tmp_path / "depth-model" / "model.safetensors"))
    f = _write(tmp_path / "m.yaml", "jobs:\n  - {name: a, prompt: x, model: {depth: depth-model}}\n")
    (job,) = load_jobs(f)
    assert job.models["depth"]["source"] == str(tmp_path / "depth-model")  # relative to the job file
    assert job.run_options().models["depth"].source == str(tmp_path / "depth-model")
    assert Job.from_json(json.loads(json.dumps(job.to_json()))) == job


def test_options_must_fit_the_backend_that_runs(tmp_path, pano):
    # panorama.width is the procedural backend's option; a panorama-file job cannot take it
    f = _write(
        tmp_path / "o.yaml",
        "defaults:\n  set: {panorama.width: 512}\njobs:\n  - {name: a, prompt: x}\n  - {name: b, panorama: pano.png}\n"
        "  - {name: c, panorama: pano.png, set: null}\n",
    )
    (err,) = _errors(f)
    assert err.startswith(f"{f}:2: job 'b': field 'set': panorama backend 'file' has no option width")
    f.write_text(f.read_text().replace("  - {name: b, panorama: pano.png}\n", ""))
    a, c = load_jobs(f)
    assert a.options == {"panorama": {"width": 512}} and c.options == {}
