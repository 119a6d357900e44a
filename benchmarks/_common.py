"""Shared helpers of the benchmark scripts: hardware description and result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Folder of the real data sets; REASONING_GYM_DATA overrides ../shared/data."""
    return Path(os.environ.get("REASONING_GYM_DATA", REPO_ROOT.parent / "shared" / "data"))


def hardware() -> dict[str, Any]:
    """CPU model, core count, memory and library versions of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory_gib = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    versions = {"python": platform.python_version()}
    for module in ("torch", "transformers", "trl", "gymnasium", "numpy"):
        try:
            versions[module] = __import__(module).__version__
        except ImportError:
            continue
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "gpu": None,
        "versions": versions,
    }


def command_line() -> str:
    """The command that ran this benchmark, as a user would type it."""
    return "python " + " ".join(shlex.quote(arg) for arg in sys.argv)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Render rows as a Markdown table; floats get 4 significant digits."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_results(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    meta: Mapping[str, Any] | None = None,
    notes: str = "",
    columns: Sequence[str] | None = None,
) -> tuple[Path, Path]:
    """Write ``results/NAME.json`` and ``results/NAME.md`` with hardware and command.

    Returns:
        The paths of the JSON and Markdown files.
    """
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    info = {
        "benchmark": name,
        "command": command_line(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "hardware": hardware(),
        **dict(meta or {}),
    }
    json_path = RESULTS_DIR / f"{name}.json"
    json_path.write_text(json.dumps({**info, "rows": list(rows)}, indent=2, default=str) + "\n")
    hw = info["hardware"]
    versions = ", ".join(f"{k} {v}" for k, v in hw["versions"].items())
    md = [
        f"# {name}",
        "",
        f"Command: `{info['command']}`",
        "",
        f"Hardware: {hw['cpu']}, {hw['cores']} cores, {hw['memory_gib']} GiB, no GPU; "
        f"{versions}. Date: {info['date_utc']} UTC.",
        "",
        markdown_table(rows, columns),
    ]
    if notes:
        md += [notes.strip(), ""]
    md_path = RESULTS_DIR / f"{name}.md"
    md_path.write_text("\n".join(md))
    return json_path, md_path
