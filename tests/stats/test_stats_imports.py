import subprocess
import sys


def test_stats_never_imports_torch():
    """docs/architecture.md: stats is numpy/scipy only (checked in a fresh interpreter)."""
    code = "import sys, scalinglab.stats; bad = [m for m in sys.modules if m.split('.')[0] == 'torch']; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
