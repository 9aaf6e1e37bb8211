"""``frontier batch submit|list|show|cancel``: the OpenAI Batch API of a running server, from the shell."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

TERMINAL = ("completed", "failed", "expired", "cancelled")


class ApiError(Exception):
    """An error answer of the server (its OpenAI error message)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("batch", help="submit and manage batches (OpenAI Batch API) on a running server")
    commands = parser.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    submit = commands.add_parser("submit", help="upload a JSONL file of /v1/chat/completions requests as a batch")
    submit.add_argument("file", type=Path, help="JSONL input: one {custom_id, method, url, body} per line")
    submit.add_argument("--wait", action="store_true", help="show a progress bar until it ends, then write its files")
    submit.add_argument("--out", type=Path, help="output file for --wait (default: FILE.output.jsonl; errors: .errors.jsonl)")
    submit.add_argument("--reasoning-share", type=float, help="the batch's own cost knob (metadata.frontier_reasoning_share)")
    submit.add_argument("--metadata", action="append", default=[], metavar="KEY=VALUE", help="batch metadata (repeatable)")
    submit.add_argument("--poll", type=float, default=1.0, help="seconds between progress checks")
    commands.add_parser("list", help="your batches, newest first").add_argument("--limit", type=int, default=20)
    for action, text in (("show", "one batch"), ("cancel", "cancel a batch")):
        commands.add_parser(action, help=text).add_argument("batch_id")
    for sub in commands.choices.values():
        sub.add_argument("--url", default=os.environ.get("FRONTIER_URL", "http://127.0.0.1:8000"),
                         help="server base URL (default: $FRONTIER_URL or http://127.0.0.1:8000)")  # fmt: skip
        sub.add_argument("--api-key", default=os.environ.get("FRONTIER_API_KEY"),
                         help="API key (default: $FRONTIER_API_KEY)")  # fmt: skip
    parser.set_defaults(handler=run)


def open_client(args: argparse.Namespace) -> Any:
    """An HTTP client for the server at ``--url`` with ``--api-key``."""
    import httpx

    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    return httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=300)


def run(args: argparse.Namespace) -> int:
    import httpx

    with open_client(args) as http:
        try:
            if args.batch_command == "submit":
                return submit(http, args)
            if args.batch_command == "list":
                batches = call(http, "GET", "/v1/batches", params={"limit": args.limit})["data"]
                for b in batches:
                    counts = b["request_counts"]
                    print(f"{b['id']}  {b['status']:<11} {counts['completed']}+{counts['failed']}/{counts['total']}")
                return 0
            method = "GET" if args.batch_command == "show" else "POST"
            suffix = "/cancel" if args.batch_command == "cancel" else ""
            print(json.dumps(call(http, method, f"/v1/batches/{args.batch_id}{suffix}"), indent=2))
            return 0
        except (ApiError, httpx.HTTPError, OSError) as exc:
            print(f"frontier batch: {exc}", file=sys.stderr)
            return 2


def call(http: Any, method: str, path: str, **kw: Any) -> Any:
    """One API call; ApiError with the server's message for an error answer."""
    response = http.request(method, path, **kw)
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:500]
        raise ApiError(f"{method} {path}: {response.status_code}: {message}")
    return response.json() if response.headers.get("content-type", "").startswith("application/json") else response


def submit(http: Any, args: argparse.Namespace) -> int:
    metadata = dict(item.split("=", 1) for item in args.metadata if "=" in item)
    if args.reasoning_share is not None:
        metadata["frontier_reasoning_share"] = str(args.reasoning_share)
    uploaded = call(http, "POST", "/v1/files", data={"purpose": "batch"},
                    files={"file": (args.file.name, args.file.read_bytes(), "application/jsonl")})  # fmt: skip
    body = {"input_file_id": uploaded["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    batch = call(http, "POST", "/v1/batches", json={**body, "metadata": metadata or None})
    print(batch["id"], flush=True)
    if not args.wait:
        return 0
    batch = wait(http, batch, args.poll)
    out = args.out or args.file.with_suffix(".output.jsonl")
    errors = out.with_name(out.name.removesuffix(".jsonl").removesuffix(".output") + ".errors.jsonl")
    for field, path in (("output_file_id", out), ("error_file_id", errors)):
        if batch.get(field):
            path.write_bytes(call(http, "GET", f"/v1/files/{batch[field]}/content").content)
            print(f"{field.removesuffix('_file_id')}: {path}", file=sys.stderr)
    counts = batch["request_counts"]
    print(f"{batch['id']} {batch['status']}: {counts['completed']} completed, {counts['failed']} failed", file=sys.stderr)
    return 0 if batch["status"] == "completed" else 1


def wait(http: Any, batch: dict[str, Any], poll_s: float) -> dict[str, Any]:
    """Poll the batch until it ends, with a progress bar of its done lines."""
    from tqdm import tqdm

    with tqdm(total=batch["request_counts"]["total"], unit="line", desc=batch["id"]) as bar:
        while True:
            counts = batch["request_counts"]
            bar.update(counts["completed"] + counts["failed"] - bar.n)
            bar.set_postfix(status=batch["status"], failed=counts["failed"])
            if batch["status"] in TERMINAL:
                return batch
            time.sleep(poll_s)
            batch = call(http, "GET", f"/v1/batches/{batch['id']}")
