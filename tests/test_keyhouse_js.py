"""keyhouse.js's unit tests (tests/js/, Node's own test runner, no npm dependencies) as one pytest test."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import need


def test_keyhouse_js_unit_tests_pass(repo_root: Path) -> None:
    node = shutil.which("node")
    if node is None:
        need("Node", "node is not on PATH (apt-get install -y nodejs)")
    assert node is not None
    done = subprocess.run(
        [node, "--test", "tests/js/"], cwd=repo_root, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout
    assert "# pass 0" not in done.stdout
