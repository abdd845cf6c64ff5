"""README.md is generated from nbs/index.ipynb: they must agree."""
import subprocess, sys
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent


def test_readme_matches_index():
    r = subprocess.run([sys.executable, TOP/'tools/readme.py', '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
