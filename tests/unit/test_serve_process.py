"""kill_tree takes down a process group and the descendants that left it (as Ray's workers do)."""

import subprocess
import time

from frontier.testing.serve_process import alive, descendants, kill_tree


def test_kill_tree_kills_the_group_and_descendants_in_other_groups():
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & setsid sleep 300 & wait"], start_new_session=True)
    deadline = time.monotonic() + 10
    while len(descendants(proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    below = set(descendants(proc.pid))
    assert len(below) == 2
    kill_tree(proc.pid, timeout_s=10)
    proc.wait(timeout=10)
    assert alive(below) == []
