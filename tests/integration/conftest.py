import csv
import json
from pathlib import Path

import pytest
from openai import OpenAI

from frontier.cli.main import main as frontier_cli

from frontier.security.keys import generate_key, hash_key
from frontier.testing.otlp_receiver import otlp_receiver
from frontier.testing.stack import root_url, running_local_stack, test_config

KEYS = {name: generate_key() for name in ("main", "limited", "nobudget", "steady", "learner")}
KEY_ENTRIES = [
    {"name": "main", "sha256": hash_key(KEYS["main"])},
    {"name": "limited", "sha256": hash_key(KEYS["limited"]), "rpm": 2},
    {"name": "nobudget", "sha256": hash_key(KEYS["nobudget"]), "reasoning_share_budget": 0.0},
    # Limits that are never reached but make every request use Redis.
    {"name": "steady", "sha256": hash_key(KEYS["steady"]), "rpm": 100000, "reasoning_share_budget": 0.9,
     "feedback_per_minute": 100000},
    # Sends as much feedback as a learning test needs, with no budget to move its decisions.
    {"name": "learner", "sha256": hash_key(KEYS["learner"]), "feedback_per_minute": 100000},
]


@pytest.fixture(scope="session")
def api_keys():
    """Plain keys of the test stack by name (only their hashes are configured)."""
    return dict(KEYS)


@pytest.fixture(scope="session")
def api_key(api_keys):
    return api_keys["main"]


ROUTELLM_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "routellm" / "mmlu_dev.csv"
LIGHT_COL, REASONING_COL = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


@pytest.fixture(scope="session")
def trained_router(tmp_path_factory):
    """A router trained with `frontier train` on a small slice of the labelled data (every 20th row)."""
    work = tmp_path_factory.mktemp("router")
    with ROUTELLM_DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))[::20]
    data = work / "slice.csv"
    with data.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["prompt", LIGHT_COL, REASONING_COL], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    out = work / "artifact"
    assert frontier_cli(["train", "--data", str(data), "--light-col", LIGHT_COL, "--reasoning-col", REASONING_COL,
                         "--out", str(out), "--name", "slice"]) == 0
    return {"dir": out, "version": json.loads((out / "router.json").read_text())["version"], "rows": len(rows)}


@pytest.fixture(scope="session")
def span_receiver():
    """An OTLP/HTTP receiver the router replicas export their spans to."""
    with otlp_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="session")
def stack_config(trained_router, span_receiver, tmp_path_factory):
    config = test_config(keys=KEY_ENTRIES, policy="learned", artifact=str(trained_router["dir"]))
    # Small queues and an overflow bound so the load and failure tests reach them quickly.
    data = config.model_dump()
    data["pools"]["light"].update(max_ongoing_requests=4, max_queued_requests=8)
    data["pools"]["reasoning"].update(overflow_inflight=2)
    data["feedback"].update(explore_cap=0.0)  # decisions the tests can predict; exploration has unit tests
    data["feedback"].update(gate_events=0)  # each feedback is served at once; the promotion gate has unit tests
    data["observability"].update(otlp_endpoint=span_receiver.endpoint,
                                 request_log_dir=str(tmp_path_factory.mktemp("request-log")))
    return type(config).model_validate(data)


@pytest.fixture(scope="session")
def local_stack(stack_config):
    with running_local_stack(stack_config) as stack:
        yield stack


@pytest.fixture(scope="session")
def base_url(local_stack, stack_config):
    return root_url(stack_config)


@pytest.fixture(scope="session")
def auth_headers(api_key):
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture(scope="session")
def client(base_url, api_key):
    return OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0, timeout=120)
