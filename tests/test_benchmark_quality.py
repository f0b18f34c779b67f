"""benchmarks/quality.py --quick, npevograd only: it runs, writes JSON and table, XNES beats SNES on the ellipsoid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_quality_benchmark(tmp_path):
    # a subprocess, so that the script's one-BLAS-thread setting applies before NumPy loads
    out = tmp_path / "quality.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--quick", "--libraries", "npevograd",
               "--out", str(out)]
    subprocess.run(command, check=True, capture_output=True, text=True, cwd=tmp_path)
    saved = json.loads(out.read_text())
    assert (tmp_path / "quality.md").read_text() == saved["markdown"] + "\n"
    assert saved["markdown"].startswith("| function | d | budget | npevograd SNES | npevograd XNES |")
    ellipsoid = saved["results"]["ellipsoid/10"]["algorithms"]
    # the rotated ellipsoid: the full covariance is 10x closer after 2000 evaluations than the diagonal one
    assert ellipsoid["npevograd XNES"]["median_final"] < 0.1 * ellipsoid["npevograd SNES"]["median_final"]
    sphere = saved["results"]["sphere/10"]["algorithms"]["npevograd SNES"]
    assert all(f < 1e-7 for f in sphere["finals"]) and sphere["seeds"] == 2
