import json
import shutil

import numpy as np
import pytest

from frontier.routing.artifact import DEFAULT_ARTIFACT, HEADS_FILE, METADATA_FILE, ArtifactError, load_artifact
from frontier.routing.features import features_from_prompt
from frontier.routing.scorer import FEATURE_VERSION


@pytest.fixture()
def copy(tmp_path):
    target = tmp_path / "router"
    shutil.copytree(DEFAULT_ARTIFACT, target)
    return target


def _edit_metadata(directory, **changes):
    path = directory / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata.update(changes)
    path.write_text(json.dumps(metadata))


def test_packaged_artifact_loads_and_records_its_provenance():
    artifact = load_artifact()
    meta = artifact.metadata
    assert meta["feature_version"] == FEATURE_VERSION
    assert len(meta["training"]["data_sha256"]) == 64 and meta["training"]["rows"] > 1000
    assert set(meta["calibration"]) >= {"light", "reasoning"}
    assert artifact.version.startswith("default-router-")
    size = sum(f.stat().st_size for f in DEFAULT_ARTIFACT.iterdir())
    assert size < 8 * 1024 * 1024


def test_round_trip_keeps_scores(tmp_path, copy):
    from frontier.routing.artifact import save_artifact

    original = load_artifact(copy)
    out = save_artifact(
        tmp_path / "again", original.scorer.featurizer.embedder, original.scorer.params, original.score_quantiles,
        training={"data_sha256": "0" * 64}, name="again",
    )
    reloaded = load_artifact(out)
    f = features_from_prompt("What is 17 * 23? Think step by step.")
    assert reloaded.scorer.score(f) == pytest.approx(original.scorer.score(f), abs=1e-9)
    assert np.allclose(reloaded.score_quantiles, original.score_quantiles)
    assert reloaded.version.startswith("again-")


def test_corrupt_weights_are_rejected(copy):
    data = bytearray((copy / HEADS_FILE).read_bytes())
    data[-5] ^= 0xFF
    (copy / HEADS_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{HEADS_FILE} is corrupt"):
        load_artifact(copy)


def test_truncated_embedding_is_rejected(copy):
    path = copy / "embedding.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ArtifactError, match="embedding.safetensors is corrupt"):
        load_artifact(copy)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"feature_version": "other-features"}, "built for features 'other-features'"),
        ({"format_version": 99}, "format version 99"),
        ({"format": "something-else"}, "not a frontier-router artifact"),
        ({"feature_dim": 3}, "metadata says 3 features"),
        ({"score_quantiles": [0.9, 0.1]}, "non-decreasing"),
    ],
)
def test_mismatched_metadata_is_rejected(copy, changes, match):
    _edit_metadata(copy, **changes)
    with pytest.raises(ArtifactError, match=match):
        load_artifact(copy)


def test_missing_pieces_are_rejected(tmp_path, copy):
    with pytest.raises(ArtifactError, match="not a directory"):
        load_artifact(tmp_path / "nowhere")
    (copy / "tokenizer.json").unlink()
    with pytest.raises(ArtifactError, match="missing tokenizer.json"):
        load_artifact(copy)
    (copy / METADATA_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(copy)
