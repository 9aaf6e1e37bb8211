"""Generated and hand-written files under deploy/ stay consistent with the code."""

import subprocess
import sys
from pathlib import Path

from frontier.cli.main import main

REPO = Path(__file__).resolve().parents[2]


def test_serve_config_yaml_is_the_generated_output(capsys):
    assert main(["config", "serve-config", str(REPO / "deploy" / "frontier-gpu.yaml")]) == 0
    generated = capsys.readouterr().out
    checked_in = (REPO / "deploy" / "serve-config.yaml").read_text()
    assert checked_in == generated, (
        "deploy/serve-config.yaml is stale: "
        "frontier config serve-config deploy/frontier-gpu.yaml > deploy/serve-config.yaml"
    )


def test_dockerfile_is_lint_clean():
    result = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(REPO / "deploy" / "Dockerfile")],
        check=False, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
