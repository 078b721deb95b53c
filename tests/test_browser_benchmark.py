"""The browser benchmark still runs: --smoke drives python app.py in Chromium once, no timing asserted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_chromium

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent


def test_browser_benchmark_smoke_measures_every_step():
    require_chromium()
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "GRADCAM_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "browser.py"), "--smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, encoding="utf-8", timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    for measure in ("first view", "first view at layer2, another class picked", "strip", "all classes", "layer switch", "class switch", "opacity", "colormap", "counterfactual"):
        assert re.search(rf"\| {re.escape(measure)} \| \d+\.\d ms", proc.stdout), f"no figure for {measure}:\n{proc.stdout[-3000:]}"
    assert "requests sent by the page during the switches and drags: 0" in proc.stdout, proc.stdout[-3000:]
