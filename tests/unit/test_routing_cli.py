import csv
import json

import pytest

from frontier.cli.main import main

from .routing_data import synthetic_rows, write_csv


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = write_csv(tmp / "train.csv", synthetic_rows(300, seed=3))
    assert main(["train", "--data", str(data), "--light-col", "light", "--reasoning-col", "reasoning",
                 "--out", str(tmp / "router"), "--name", "cli-test"]) == 0
    return tmp, data


def test_train_writes_a_loadable_artifact(trained):
    tmp, _ = trained
    meta = json.loads((tmp / "router" / "router.json").read_text())
    assert meta["version"].startswith("cli-test-") and meta["training"]["light_col"] == "light"


def test_score_writes_row_and_score(trained, tmp_path):
    tmp, _ = trained
    prompts = tmp_path / "prompts.csv"
    prompts.write_text('prompt\n"compute the integral of x^2"\nhello\n"multi\nline"\n')
    out = tmp_path / "scores.csv"
    assert main(["score", "--router", str(tmp / "router"), "--data", str(prompts), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["row"] for r in rows] == ["0", "1", "2"]
    assert all(0.0 <= float(r["score"]) <= 1.0 for r in rows)
    assert float(rows[0]["score"]) > float(rows[1]["score"])


def test_eval_writes_metrics_and_plot(trained, tmp_path, capsys):
    tmp, _ = trained
    data = write_csv(tmp_path / "test.csv", synthetic_rows(200, seed=9))
    out = tmp_path / "report"
    assert main(["eval", "--router", str(tmp / "router"), "--data", str(data), "--light-col", "light",
                 "--reasoning-col", "reasoning", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["routers"]) == {"router", "random", "prompt_length", "oracle"}
    for m in metrics["routers"].values():
        assert set(m) == {"apgr", "cpt_50", "cpt_80", "quality_at_20", "quality_at_50"}
    assert metrics["routers"]["random"]["apgr"] == pytest.approx(0.5)
    assert metrics["routers"]["router"]["apgr"] > 0.7
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "APGR" in capsys.readouterr().out


def test_malformed_data_is_a_clear_cli_error(trained, tmp_path, capsys):
    tmp, _ = trained
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,light,reasoning\nq,True,True\nq2,maybe,True\n")
    assert main(["eval", "--router", str(tmp / "router"), "--data", str(bad), "--light-col", "light",
                 "--reasoning-col", "reasoning", "--out", str(tmp_path / "o")]) == 2
    assert "row 1, column 'light'" in capsys.readouterr().err
    assert main(["train", "--data", str(bad), "--light-col", "light", "--reasoning-col", "nope",
                 "--out", str(tmp_path / "r")]) == 2
    assert "missing column(s) ['nope']" in capsys.readouterr().err


def test_bench_router_prints_json_last(capsys):
    assert main(["bench", "router", "--prompts", "30", "--no-baseline"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    assert result["prompts"] == 30 and 0 < result["p50_ms"] <= result["p99_ms"]


def test_train_length_prior_is_recorded_and_favours_longer_prompts(trained, tmp_path):
    _, data = trained
    assert main(["train", "--data", str(data), "--light-col", "light", "--reasoning-col", "reasoning",
                 "--out", str(tmp_path / "tilted"), "--length-prior", "2"]) == 0
    meta = json.loads((tmp_path / "tilted" / "router.json").read_text())
    assert meta["training"]["settings"]["length_prior"] == 2.0
    prompts = tmp_path / "prompts.csv"
    prompts.write_text('prompt\n"Tell me about the weather today, please."\n'
                       '"Tell me about the weather today, please. kindly also briefly today friend again now here"\n')
    scores = {}
    for name in ("router", "tilted"):
        out = tmp_path / f"{name}.csv"
        router = trained[0] / "router" if name == "router" else tmp_path / "tilted"
        assert main(["score", "--router", str(router), "--data", str(prompts), "--out", str(out)]) == 0
        short, long = (float(r["score"]) for r in csv.DictReader(out.open()))
        scores[name] = long - short
    assert scores["tilted"] > scores["router"] and scores["tilted"] > 0
