"""`make bench`: run every benchmarks/bench_*.py and write docs/benchmarks.md.

Each bench module defines ``run() -> list[dict]``; a row has keys ``name`` (what was measured),
``value`` (number), ``unit``, ``target`` (text such as "<= 10 s", or ""), ``ok`` (bool or None
when there is no target) and ``note``. Run one area with ``python benchmarks/run.py procedural``.
"""

from __future__ import annotations

import datetime
import importlib.util
import platform
import sys
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parent / "docs" / "benchmarks.md"


def _machine() -> str:
    import torch

    from worldgen._resources import cpu_count

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (
        f"{cpu}, {cpu_count()} cores usable, Python {platform.python_version()}, torch {torch.__version__}, GPU: {gpu}"
    )


def main(argv: list[str]) -> int:
    only = set(argv)
    sections: list[str] = []
    failed = 0
    for path in sorted(HERE.glob("bench_*.py")):
        area = path.stem[len("bench_") :]
        if only and area not in only:
            continue
        spec = importlib.util.spec_from_file_location(f"bench_{area}", path)
        mod = importlib.util.module_from_spec(spec)
        print(f"== {area}", flush=True)
        try:
            spec.loader.exec_module(mod)
            rows = mod.run()
        except Exception:
            traceback.print_exc()
            sections.append(f"## {area}\n\nThe benchmark crashed; run `python benchmarks/run.py {area}`.\n")
            failed += 1
            continue
        lines = [
            f"## {area}\n",
            (mod.__doc__ or "").strip() + "\n",
            "| measure | value | target | met | note |",
            "|---|---|---|---|---|",
        ]
        for r in rows:
            ok = r.get("ok")
            mark = "" if ok is None else ("yes" if ok else "**no**")
            failed += ok is False
            val = r["value"]
            val_s = f"{val:.3g}" if isinstance(val, float) else str(val)
            lines.append(
                f"| {r['name']} | {val_s} {r.get('unit', '')} | {r.get('target', '')} | {mark} "
                f"| {r.get('note') or ''} |"
            )
            print(f"  {r['name']}: {val_s} {r.get('unit', '')} {r.get('target', '')} {mark}", flush=True)
        sections.append("\n".join(lines) + "\n")
    if not only:
        stamp = datetime.date.today().isoformat()
        DOC.write_text(
            "# Benchmarks\n\nWritten by `make bench` on "
            f"{stamp}.\n\nMachine: {_machine()}.\n\n"
            "Figures from a shared 2-core machine vary by about ±20% between runs.\n\n" + "\n".join(sections)
        )
        print(f"wrote {DOC}")
    elif DOC.exists():
        _replace_sections(sections)
    return 1 if failed else 0


def _replace_sections(sections: list[str]) -> None:
    """Put freshly measured ``## area`` sections into docs/benchmarks.md in place of the old ones
    (the others keep their figures), noting the date each was re-run."""
    text = DOC.read_text()
    stamp = datetime.date.today().isoformat()
    for sec in sections:
        head = sec.split("\n", 1)[0]
        sec = sec.replace("\n", f"\n\nRe-run alone (`python benchmarks/run.py {head[3:]}`) on {stamp}.\n", 1)
        start = text.find(head + "\n")
        if start < 0:
            text = text.rstrip("\n") + "\n\n" + sec
            continue
        end = text.find("\n## ", start + len(head))
        text = text[:start] + sec + (text[end + 1 :] if end >= 0 else "")
    DOC.write_text(text)
    print(f"updated {DOC}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
