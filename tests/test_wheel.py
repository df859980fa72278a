"""The built wheel works on its own: grammar and registry data ship inside it.

Builds the wheel, installs it in a fresh virtual environment (dependencies
from the configured package index) and compiles the seed trial from a
directory outside the repository, so nothing can be found through the
source tree.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(cmd, cwd, timeout=900):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def test_wheel_installs_and_compiles_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", dist, ROOT], cwd=tmp_path)
    wheels = list(dist.glob("eligibility-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "eligibility/grammars/criteria.lark" in names
    assert "eligibility/data/registry.toml" in names
    assert "eligibility/py.typed" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([bin_dir / "python", "-m", "pip", "install", "-q", wheels[0]], cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    proc = _run([bin_dir / "eligibility", "compile", ROOT / "trials" / "ucmsc_t2dm.ctgov.json", "--format", "json"],
                cwd=outside, timeout=120)
    doc = json.loads(proc.stdout)
    i3 = next(c for c in doc["criteria"] if c["id"] == "I3")
    assert (i3["tree"]["kind"], i3["tree"]["concept"], i3["tree"]["low"], i3["tree"]["high"]) == ("range", "bmi", 24.0, 40.0)
    # the installed package is the one that ran, not the source tree
    where = _run([bin_dir / "python", "-c", "import eligibility, sys; print(eligibility.__file__)"], cwd=outside)
    assert str(venv) in where.stdout
