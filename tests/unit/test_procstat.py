"""A stack's processes and their CPU split into engine and framework, on a fake /proc and on the real one."""

import os
import subprocess
import sys
import time

from frontier.testing.procstat import CLK_TCK, StackMeter, alive, cpu_used, end_processes, process_label, read_proc


def _write(root, pid, ppid, comm, args, ticks, starttime=100):
    d = root / str(pid)
    d.mkdir()
    # utime is field 14 and stime field 15, starttime field 22 (1-based, comm being field 2).
    after = ["S", ppid] + [0] * 9 + [ticks, ticks] + [0] * 6 + [starttime] + [0] * 10
    (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(map(str, after)) + "\n")
    (d / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")


def _tree(root, ticks, reused_starttime=100):
    _write(root, 1, 0, "init", ["/sbin/init"], ticks)
    _write(root, 10, 1, "python", ["/v/bin/python", "bench.py"], ticks)  # the load generator: not the stack
    _write(root, 20, 10, "python", ["/v/bin/python", "-m", "vllm.entrypoints.openai.api_server"], ticks)
    _write(root, 21, 20, "VLLM::EngineCor", ["VLLM::EngineCore"], ticks)
    _write(root, 30, 1, "raylet", ["/x/raylet", "--session_dir=/tmp/ray/session_A"], ticks)  # reparented
    _write(root, 31, 30, "ray::ServeRepli", ["ray::ServeReplica:app:Router.handle_request"], ticks,
           starttime=reused_starttime)
    _write(root, 40, 1, "raylet", ["/x/raylet", "--session_dir=/tmp/ray/session_B"], ticks)  # another stack


def test_the_stack_is_its_trees_and_marked_processes_and_cpu_splits_engine_from_framework(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    _tree(before, ticks=0)
    _tree(after, ticks=CLK_TCK, reused_starttime=200)  # 2 s each (utime + stime); pid 31 was reused
    meter_before = StackMeter([20], ["/tmp/ray/session_A"], proc_root=before)
    meter_after = StackMeter([20], ["/tmp/ray/session_A"], proc_root=after)
    first, second = meter_before.snapshot(), meter_after.snapshot()
    assert sorted(second) == [20, 21, 30, 31]

    use = cpu_used(first, second)
    assert use.engine_s == 2.0 and use.engine_labels == ("VLLM::EngineCore",)
    # pid 31 started anew: its whole 2 s count, not 2 s minus the old process's 0.
    assert use.framework_by_label == {"vllm.entrypoints.openai.api_server": 2.0, "raylet": 2.0,
                                      "ray::ServeReplica:app:Router": 2.0}
    assert use.framework_s == 6.0


def test_a_pid_reused_between_snapshots_counts_from_zero(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    _write(before, 5, 1, "python", ["python", "a.py"], ticks=10 * CLK_TCK)
    _write(after, 5, 1, "python", ["python", "a.py"], ticks=CLK_TCK // 2, starttime=999)
    use = cpu_used({5: read_proc(5, before)}, {5: read_proc(5, after)})
    assert use.framework_s == 1.0  # not 1 - 20 (a negative figure from another process's counters)


def test_labels():
    assert process_label(["VLLM::Worker_TP0" + " " * 40], "VLLM::Worker_TP") == "VLLM::Worker_TP0"
    assert process_label(["ray::ServeController.run_control_loop"], "ray::ServeContr") == "ray::ServeController"
    assert process_label(["/v/bin/python3", "-X", "utf8", "/s/dashboard/agent.py", "--x"], "python3") == "agent.py"
    assert process_label(["/v/bin/python", "-u", "-m", "vllm.entrypoints.openai.api_server"], "python") == \
        "vllm.entrypoints.openai.api_server"
    assert process_label(["/r/redis-server 127.0.0.1:6390"], "redis-server") == "redis-server"
    assert process_label(["/v/bin/python", "-c", "from multiprocessing.resource_tracker import main;main(8)"],
                         "python") == "python -c multiprocessing.resource_tracker"
    assert process_label([], "kworker") == "kworker"


def test_real_proc_finds_a_child_and_its_cpu():
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time()\n"
                              "while time.process_time() - t < 0.3: pass\ninput()"],
                             stdin=subprocess.PIPE)
    try:
        meter = StackMeter([child.pid])
        deadline = time.monotonic() + 30
        while (snap := meter.snapshot()) and snap[child.pid].cpu_s < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(snap) == [child.pid] and os.getpid() not in snap
        assert snap[child.pid].cpu_s >= 0.3 and snap[child.pid].label.endswith(" -c time")
    finally:
        child.communicate(b"\n", timeout=30)


def test_end_processes_kills_one_that_ignores_sigterm_and_spares_a_reused_pid():
    code = "import signal, sys\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\ninput()"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        proc = read_proc(child.pid)
        other = read_proc(os.getpid())
        stale = type(other)(**{**other.__dict__, "starttime": other.starttime + 1})  # this pid, another process
        start = time.monotonic()
        end_processes([proc, stale], grace_s=0.5)
        assert child.wait(timeout=10) == -9 and time.monotonic() - start < 5
        assert alive([proc]) == []
    finally:
        if child.poll() is None:
            child.kill()
