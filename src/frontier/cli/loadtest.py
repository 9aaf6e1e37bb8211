"""``frontier loadtest``: run the Locust workload headless and summarise it.

Writes Locust's DIR/locust_stats.csv, DIR/locust_failures.csv, DIR/locust_exceptions.csv,
DIR/locust_stats_history.csv and DIR/locust.json (final statistics), and DIR/summary.json (requests,
failures, p50/p95/p99, requests/s, per-pool latency and TTFT, decision mix, errors). The exit status is
Locust's: 0 when every request succeeded, 1 when some failed; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

CHAT_ROW = ("POST", "/v1/chat/completions")
CSV_PREFIX = "locust"
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "loadtest", help="run the Locust load test headless and write CSVs plus summary.json"
    )
    parser.add_argument(
        "--host", required=True, help="server root URL, e.g. http://127.0.0.1:8000 (a trailing /v1 is ignored)"
    )
    parser.add_argument("--users", type=int, default=10, help="concurrent simulated users (default 10)")
    parser.add_argument("--spawn-rate", type=float, help="users started per second (default: all within 5 s)")
    parser.add_argument("--duration", default="60s", help="run time: 90, 90s, 2m, 1h30m (default 60s)")
    parser.add_argument("--out", required=True, help="directory for the CSVs and summary.json")
    parser.add_argument(
        "--user-class",
        default="ChatUser",
        choices=("ChatUser", "FixedPromptUser"),
        help="workload: the realistic mix (ChatUser) or identical requests (FixedPromptUser)",
    )
    parser.add_argument("--model", default="frontier", help="FixedPromptUser: model to call")
    parser.add_argument("--max-tokens", type=int, default=16, help="FixedPromptUser: tokens per answer")
    parser.set_defaults(handler=run)


def parse_duration(text: str) -> int:
    """Seconds in a Locust run-time string (``90``, ``90s``, ``2m``, ``1h30m``)."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"invalid duration {text!r}: use e.g. 90s, 2m or 1h30m")
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return total


def normalize_host(host: str) -> str:
    """The server root URL Locust prefixes to ``/v1/...``."""
    host = host.rstrip("/")
    return host[: -len("/v1")] if host.endswith("/v1") else host


def scenarios_file() -> Path:
    """The packaged Locust workload (found without importing it: importing Locust monkey-patches with gevent)."""
    spec = importlib.util.find_spec("frontier.loadtest_scenarios")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("frontier.loadtest_scenarios is not installed")
    return Path(spec.origin)


def locust_command(
    host: str,
    users: int,
    spawn_rate: float,
    duration_s: int,
    out_dir: Path,
    user_class: str = "ChatUser",
    extra: list[str] | None = None,
) -> list[str]:
    """The headless Locust command line for the packaged workload."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(scenarios_file()),
        "--headless",
        "--only-summary",
        "--host",
        normalize_host(host),
        "--users",
        str(users),
        "--spawn-rate",
        f"{spawn_rate:g}",
        "--run-time",
        f"{duration_s}s",
        "--stop-timeout",
        "30",
        "--csv",
        str(out_dir / CSV_PREFIX),
        # The CSVs are rewritten once a second and miss the last one; the JSON holds the final figures.
        "--json-file",
        str(out_dir / CSV_PREFIX),
        *(extra or []),
        user_class,
    ]


def percentile(response_times: dict[int, int], fraction: float) -> float | None:
    """Locust's percentile of a {rounded ms: count} histogram (the same figure its reports show)."""
    total = sum(response_times.values())
    if total == 0:
        return None
    below = int(total * fraction)
    seen = 0
    for ms in sorted(response_times, reverse=True):
        seen += response_times[ms]
        if total - seen <= below:
            return float(ms)
    return None


def latency(entry: dict[str, Any]) -> dict[str, float | None]:
    """p50/p95/p99, mean and max (ms) of one Locust stats entry."""
    times = {int(ms): count for ms, count in entry["response_times"].items()}
    result = {key: percentile(times, fraction) for key, fraction in PERCENTILES.items()}
    timed = entry["num_requests"] - entry.get("num_none_requests", 0)
    result["mean"] = entry["total_response_time"] / timed if timed else None
    result["max"] = float(entry["max_response_time"]) if timed else None
    return result


def read_entries(out_dir: Path) -> list[dict[str, Any]]:
    """Locust's final statistics (``--json-file``), one dict per (method, name); empty if it wrote none."""
    path = out_dir / f"{CSV_PREFIX}.json"
    return json.loads(path.read_text()) if path.exists() else []


def read_failures(out_dir: Path) -> list[dict[str, Any]]:
    """The distinct errors from Locust's failures CSV, most frequent first."""
    path = out_dir / f"{CSV_PREFIX}_failures.csv"
    if not path.exists():
        return []
    with path.open(newline="") as f:
        rows = [
            {"name": r["Name"], "error": r["Error"], "occurrences": int(r["Occurrences"])} for r in csv.DictReader(f)
        ]
    return sorted(rows, key=lambda r: -r["occurrences"])


def summarize(out_dir: Path) -> dict[str, Any]:
    """Requests, failures, latency percentiles, per-pool latency and the decision mix of a finished run."""
    entries = read_entries(out_dir)
    chat = next((e for e in entries if (e["method"], e["name"]) == CHAT_ROW), None)
    requests = chat["num_requests"] if chat else 0
    failures = chat["num_failures"] if chat else 0
    elapsed = (chat.get("last_request_timestamp") or 0) - chat["start_time"] if chat else 0
    pools: dict[str, dict[str, Any]] = {}
    decisions: dict[str, int] = {}
    scenarios: dict[str, dict[str, Any]] = {}
    for entry in entries:
        kind, name = entry["method"], entry["name"]
        if kind.startswith("pool:"):
            pool = pools.setdefault(kind[len("pool:") :], {"answered": 0, "total_ms": None, "ttft_ms": None})
            pool[f"{name}_ms"] = latency(entry)
            if name == "total":
                pool["answered"] = entry["num_requests"]
        elif kind == "decision":
            decisions[name] = entry["num_requests"]
        elif kind == "scenario":
            scenarios[name] = {"answered": entry["num_requests"], "total_ms": latency(entry)}
    answered = sum(decisions.values())
    return {
        "requests": requests,
        "failures": failures,
        "failure_rate": failures / requests if requests else 0.0,
        "requests_per_s": requests / elapsed if elapsed > 0 else None,
        "latency_ms": latency(chat) if chat else {},
        "pools": dict(sorted(pools.items())),
        "decision_mix": {name: {"count": n, "share": n / answered} for name, n in sorted(decisions.items())},
        "scenarios": dict(sorted(scenarios.items())),
        "errors": read_failures(out_dir),
    }


def run_loadtest(
    host: str,
    users: int,
    duration_s: int,
    out_dir: Path,
    spawn_rate: float | None = None,
    user_class: str = "ChatUser",
    extra: list[str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """Run Locust to completion, write summary.json; returns Locust's exit status and the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rate = spawn_rate if spawn_rate is not None else max(1.0, users / 5)
    command = locust_command(host, users, rate, duration_s, out_dir, user_class, extra)
    # Locust stops on its own after the run time; the margin covers start-up and --stop-timeout.
    try:
        code = subprocess.run(command, timeout=duration_s + 180).returncode
    except subprocess.TimeoutExpired:
        code = 124  # killed; the CSVs hold what Locust had written by then
    summary = {
        "host": normalize_host(host),
        "users": users,
        "spawn_rate": rate,
        "duration_s": duration_s,
        "user_class": user_class,
        "locust_exit_code": code,
        **summarize(out_dir),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return code, summary


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("locust") is None:
        print("frontier loadtest: Locust is not installed: pip install 'frontier-router[load]'", file=sys.stderr)
        return 2
    try:
        duration_s = parse_duration(args.duration)
    except ValueError as exc:
        print(f"frontier loadtest: {exc}", file=sys.stderr)
        return 2
    if args.users < 1 or (args.spawn_rate is not None and args.spawn_rate <= 0):
        print("frontier loadtest: --users and --spawn-rate must be positive", file=sys.stderr)
        return 2
    extra = ["--frontier-model", args.model, "--frontier-max-tokens", str(args.max_tokens)]
    out_dir = Path(args.out)
    code, summary = run_loadtest(args.host, args.users, duration_s, out_dir, args.spawn_rate, args.user_class, extra)
    latency = summary["latency_ms"]
    mix = ", ".join(f"{name} {entry['share']:.0%}" for name, entry in summary["decision_mix"].items()) or "none"
    print(
        f"{summary['requests']} requests, {summary['failures']} failed, "
        f"p50 {latency.get('p50')} ms, p95 {latency.get('p95')} ms, p99 {latency.get('p99')} ms; decisions {mix}"
    )
    print(f"wrote {out_dir / 'summary.json'}")
    return code
