"""The release workflow is valid GitHub Actions (actionlint), builds on the three systems, and publishes on tags
only what the installer scripts make."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def test_actionlint_finds_nothing() -> None:
    actionlint = Path(sys.executable).parent / "actionlint"
    assert actionlint.exists(), "actionlint is a dev dependency: run scripts/setup.sh --dev"
    result = subprocess.run([str(actionlint), "-no-color", str(WORKFLOW)], capture_output=True, text=True,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_system_builds_with_the_repositorys_own_scripts() -> None:
    text = WORKFLOW.read_text()
    for runner in ("ubuntu-", "macos-", "windows-"):
        assert f"runs-on: {runner}" in text
    for script in ("installers/linux/package.py", "installers/macos/build.py", "installers\\windows\\build.py"):
        assert script in text
        assert (REPO / script.replace("\\", "/")).exists()
    assert "startsWith(github.ref, 'refs/tags/v')" in text
    assert "contents: write" in text
