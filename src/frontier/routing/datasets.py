"""RouteLLM-format CSV files: a ``prompt`` column plus one outcome column per model.

Outcomes are True/False (any case), 1/0, or a number in [0, 1]; a pool given several columns (several
models of its kind) gets their mean. Problems are reported with the 0-based
data row (the ``row`` of ``frontier score`` output) and the column name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

PROMPT_COLUMN = "prompt"
_BOOLEAN = {"true": 1.0, "false": 0.0}


class DataError(ValueError):
    """A data file that cannot be used, with a message naming the file, row and column."""


@dataclass(frozen=True)
class Outcomes:
    """Prompts with the light and the reasoning pool's quality on each."""

    prompts: list[str]
    light: np.ndarray
    reasoning: np.ndarray
    sha256: str


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV file: {exc}") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; the file has {list(frame.columns)}")
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    return frame


def _prompts(path: Path, frame: pd.DataFrame) -> list[str]:
    prompts = frame[PROMPT_COLUMN].tolist()
    for row, prompt in enumerate(prompts):
        if not prompt.strip():
            raise DataError(f"{path}: row {row}, column {PROMPT_COLUMN!r}: empty prompt")
    return prompts


def parse_outcome(value: str) -> float:
    """One outcome cell as a number in [0, 1]; raises ValueError otherwise."""
    text = value.strip()
    if text.lower() in _BOOLEAN:
        return _BOOLEAN[text.lower()]
    number = float(text)
    if not (0.0 <= number <= 1.0) or math.isnan(number):
        raise ValueError("outside [0, 1]")
    return number


def _outcomes(path: Path, frame: pd.DataFrame, column: str) -> np.ndarray:
    values = np.empty(len(frame), dtype=np.float64)
    for row, cell in enumerate(frame[column].tolist()):
        try:
            values[row] = parse_outcome(cell)
        except ValueError:
            raise DataError(
                f"{path}: row {row}, column {column!r}: {cell!r} is not True/False or a number in [0, 1]"
            ) from None
    return values


def load_prompts(path: str | Path) -> list[str]:
    """The ``prompt`` column of a CSV file."""
    path = Path(path)
    return _prompts(path, _read(path, [PROMPT_COLUMN]))


def _columns(col: str | Sequence[str]) -> list[str]:
    return [col] if isinstance(col, str) else list(col)


def load_outcomes(path: str | Path, light_col: str | Sequence[str], reasoning_col: str | Sequence[str]) -> Outcomes:
    """Prompts and both pools' outcomes (mean over each pool's columns) from a RouteLLM-format CSV file."""
    path = Path(path)
    light_cols, reasoning_cols = _columns(light_col), _columns(reasoning_col)
    if not light_cols or not reasoning_cols:
        raise DataError(f"{path}: each pool needs at least one outcome column")
    frame = _read(path, [PROMPT_COLUMN, *light_cols, *reasoning_cols])
    return Outcomes(
        prompts=_prompts(path, frame),
        light=np.mean([_outcomes(path, frame, c) for c in light_cols], axis=0),
        reasoning=np.mean([_outcomes(path, frame, c) for c in reasoning_cols], axis=0),
        sha256=file_sha256(path),
    )


def load_groups(path: str | Path, column: str) -> np.ndarray:
    """One column of a CSV file as strings (e.g. ``domain``: only for splitting data, never a feature)."""
    path = Path(path)
    return _read(path, [column])[column].to_numpy(dtype=str)
