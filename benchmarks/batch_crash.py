"""Batches through the official client, and a batch that survives kill -9 of the whole server.

One run starts ``frontier serve`` (the CPU demo config, its own embedded Redis and batch storage directory) as its
own process group, then
  1. runs a ``--clean-lines`` batch (default 200) to completion: every ``custom_id`` once, each a routed 200 answer
     with its ``frontier`` decision;
  2. submits a ``--lines`` batch (default 300), and when ``--kill-at`` (default 30%) of it is done sends SIGKILL to
     the server's process group (Ray, Serve, the vLLM engines, the embedded Redis), starts the server again on
     the same config and waits for the batch to complete: every ``custom_id`` exactly once.
The last line is a JSON object with every figure.

    .venv/bin/python benchmarks/batch_crash.py [--clean-lines 200] [--lines 300] [--kill-at 0.3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import openai

from frontier.config import FrontierConfig
from frontier.testing.batch_client import batch_lines, check_output, submit, wait_for
from frontier.testing.serve_process import ServeProcess
from frontier.testing.stack import test_config


def crash_config(workdir: Path) -> FrontierConfig:
    """The test stack's config with the batch files in ``workdir`` (they must outlive the server)."""
    data = test_config().model_dump()
    data["batch"]["storage_uri"] = str(workdir / "files")
    return FrontierConfig.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean-lines", type=int, default=200)
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--kill-at", type=float, default=0.3)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="frontier-batch-crash-") as tmp:
        server = ServeProcess(crash_config(Path(tmp)), Path(tmp))
        started = time.monotonic()
        url = server.start()
        result["start_s"] = round(time.monotonic() - started, 1)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        try:
            if args.clean_lines:
                started = time.monotonic()
                batch = submit(client, batch_lines(args.clean_lines, seed=1, max_tokens=args.max_tokens))
                batch = wait_for(client, batch.id, lambda b: False, timeout_s=3600)
                out = check_output(client, batch, [f"req-{i}" for i in range(args.clean_lines)])
                result["clean"] = {"lines": args.clean_lines, "status": batch.status, "seconds": round(time.monotonic() - started, 1),
                                   "unique_custom_ids": len({x["custom_id"] for x in out}),
                                   "reasoning_share": sum(x["response"]["body"]["frontier"]["pool"] == "reasoning" for x in out) / len(out)}  # fmt: skip
                print("clean", json.dumps(result["clean"]), flush=True)

            started = time.monotonic()
            batch = submit(client, batch_lines(args.lines, seed=2, max_tokens=args.max_tokens))
            kill_at = int(args.lines * args.kill_at)
            at_kill = wait_for(client, batch.id, lambda b: b.request_counts.completed >= kill_at, timeout_s=3600, poll_s=0.05)
            server.kill()
            killed = time.monotonic()
            server.start()
            restarted = time.monotonic()
            final = wait_for(client, batch.id, lambda b: False, timeout_s=3600)
            out = check_output(client, final, [f"req-{i}" for i in range(args.lines)])
            result["crash"] = {"lines": args.lines, "completed_at_kill": at_kill.request_counts.completed,
                               "status": final.status, "counts": final.request_counts.model_dump(),
                               "unique_custom_ids": len({x["custom_id"] for x in out}), "output_lines": len(out),
                               "restart_s": round(restarted - killed, 1), "after_restart_s": round(time.monotonic() - restarted, 1),
                               "total_s": round(time.monotonic() - started, 1)}  # fmt: skip
            print("crash", json.dumps(result["crash"]), flush=True)
        except BaseException:
            print(server.log_tail(), flush=True)
            raise
        finally:
            server.kill()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
