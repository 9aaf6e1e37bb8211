"""The embedded redis-server's lifecycle: it dies with the process that started it, even a SIGKILLed one."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import redis

from frontier.feedback.redis_server import EmbeddedRedis

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")

PARENT = textwrap.dedent(
    """
    import sys, time
    from frontier.feedback.redis_server import EmbeddedRedis
    server = EmbeddedRedis(sys.argv[1])
    server.start()
    print(server.port, server.pid, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int) -> bool:
    """Reaped, or a zombie waiting for a reaper that is not its old parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_embedded_redis_dies_with_a_sigkilled_parent(tmp_path):
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "redis")],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")},
    )
    try:
        port, pid = map(int, parent.stdout.readline().split())
        client = redis.Redis(port=port, socket_timeout=1)
        client.set("k", "v")  # answered: the server is up
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 15
        while not _gone(pid):
            assert time.monotonic() < deadline, "redis-server outlived its SIGKILLed parent"
            time.sleep(0.05)
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=port, socket_timeout=1, socket_connect_timeout=1).ping()
    finally:
        if parent.poll() is None:
            parent.kill()
    # It shut down cleanly (SIGTERM flushes the AOF): a new server on the same directory has the key.
    with EmbeddedRedis(tmp_path / "redis") as again:
        assert redis.Redis(port=again.port).get("k") == b"v"
