"""``frontier serve`` as a separate process group: started like a user would, killed with SIGKILL, restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from frontier.cli.serve import port_is_free
from frontier.config import FrontierConfig
from frontier.testing.stack import root_url, wait_ready


class ServeProcess:
    """``frontier serve --config FILE`` in its own session, so one ``killpg`` takes down every process it
    started: Ray's GCS and raylet, the Serve controller and replicas, the vLLM engines and the embedded Redis."""

    def __init__(self, config: FrontierConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = Path(workdir)
        self.config_path = self.workdir / "frontier.yaml"
        self.config_path.write_text(yaml.safe_dump(config.model_dump(mode="json")))
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return root_url(self.config)

    def start(self, ready_timeout_s: float = 600) -> str:
        """Start the server and wait until it is ready; returns its root URL."""
        self.starts += 1
        wait_port_free(self.config.server.host, self.config.server.port)
        log = (self.workdir / f"serve-{self.starts}.log").open("w")
        cmd = [sys.executable, "-m", "frontier.cli.main", "serve", "--config", str(self.config_path)]
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            wait_ready(self.url, ready_timeout_s)
        except TimeoutError:
            self.kill()
            raise
        return self.url

    def kill(self, timeout_s: float = 60) -> None:
        """SIGKILL the whole process group and, as a dying node would, every process the server started (Ray's
        raylet starts its workers in process groups of their own); returns once none of them is left."""
        if self.proc is None:
            return
        kill_tree(self.proc.pid, timeout_s)
        self.proc.wait(timeout=timeout_s)
        self.proc = None

    def log_tail(self, chars: int = 4000) -> str:
        path = self.workdir / f"serve-{self.starts}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def wait_port_free(host: str, port: int, timeout_s: float = 120) -> None:
    """Until nothing listens on ``host:port`` (a killed server's last threads may still be closing it)."""
    deadline = time.monotonic() + timeout_s
    while not port_is_free(host, port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host}:{port} is still in use after {timeout_s}s")
        time.sleep(0.2)


def kill_tree(pgid: int, timeout_s: float = 60) -> None:
    """SIGKILL process group ``pgid`` and every descendant of its leader, wherever their group; returns once
    none of them is left."""
    victims = set(descendants(pgid))
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while (left := alive(victims) + group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if left:
        raise RuntimeError(f"processes of the server outlived SIGKILL: {left}")


def _processes() -> dict[int, tuple[str, int, int]]:
    """Every live process: pid -> (state, parent pid, process group). A zombie counts while it still has threads:
    a killed multi-threaded process shows as a zombie before its last thread has exited and closed its sockets."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            state, ppid, pgrp = stat[stat.rindex(")") + 2 :].split()[:3]
            if state == "Z" and int(stat[stat.rindex(")") + 2 :].split()[17]) <= 1:
                continue
        except (OSError, ValueError, IndexError):
            continue
        table[int(entry.name)] = (state, int(ppid), int(pgrp))
    return table


def group_members(pgid: int) -> list[int]:
    """Live processes whose process group is ``pgid``."""
    return [pid for pid, (_, _, group) in _processes().items() if group == pgid]


def descendants(root: int) -> list[int]:
    """Live processes below ``root`` in the process tree."""
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in _processes().items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def alive(pids: set[int]) -> list[int]:
    """Which of ``pids`` still run."""
    table = _processes()
    return [pid for pid in pids if pid in table]
