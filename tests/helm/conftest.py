import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.support.helm import ensure_helm

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "frontier"
CI_VALUES = {
    "default": [],
    "gpu": [CHART / "ci" / "gpu-values.yaml"],
    "external-redis": [CHART / "ci" / "external-redis-values.yaml"],
}


@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_helm()


def run_helm(helm: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(helm), *args], check=False, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def render(helm) -> Callable[..., list[dict]]:
    """``render(*values_files, **set_json)``: the objects `helm template` produces (raises on a helm error)."""

    def _render(*values: Path, namespace: str = "llm", set_json: tuple[str, ...] = ()) -> list[dict]:
        args = ["template", "frontier", str(CHART), "--namespace", namespace]
        for path in values:
            args += ["-f", str(path)]
        for item in set_json:
            args += ["--set-json", item]
        result = run_helm(helm, *args)
        if result.returncode != 0:
            raise AssertionError(f"helm template failed:\n{result.stderr}")
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    return _render


@pytest.fixture(scope="session", params=sorted(CI_VALUES))
def scenario(request, render) -> tuple[str, list[dict]]:
    """Each CI values scenario with its rendered objects."""
    return request.param, render(*CI_VALUES[request.param])
