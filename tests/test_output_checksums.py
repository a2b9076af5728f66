"""Shipped models give the pinned outputs on the sample photos (tests/data/output_checksums.json, written
by scripts/pin_output_checksums.py): thumbnails within a tolerance on any machine, bytes identical on a
machine of a pinned platform (another CPU sums float32 convolutions in another order).

A failure here means some model's output changed. If that was meant (a new shipped model, a decoding
change), re-pin with ``python scripts/pin_output_checksums.py`` and commit the JSON with the change;
otherwise the change broke behaviour that should have stayed the same.
"""

from __future__ import annotations

import json

import pytest
from _scripts import load_script

PIN = load_script("pin_output_checksums")
PINNED = json.loads(PIN.CHECKSUMS.read_text())


@pytest.fixture(scope="module")
def checksums(tmp_path_factory) -> dict[str, dict[str, str]]:
    return PIN.compute_checksums(tmp_path_factory.mktemp("checksums"))


def test_every_shipped_model_is_pinned() -> None:
    from lumachrome.colorizer import available_models

    pinned_models = {args[args.index("--model") + 1] for _, args in PIN.CASES.values()}
    assert pinned_models == set(available_models())
    assert set(PINNED["thumbnails"]) == set(PIN.CASES)
    assert PINNED["platforms"] and all(set(h) == set(PIN.CASES) for h in PINNED["platforms"].values())


@pytest.mark.parametrize("case", sorted(PIN.CASES))
def test_output_matches_its_thumbnail(case: str, checksums: dict[str, dict[str, dict[str, str]]]) -> None:
    bad = PIN.thumbnail_changes({case: PINNED["thumbnails"][case]}, PIN.thumbnails({case: checksums[case]}))
    assert not bad, f"{case}: outputs differ from tests/data/output_checksums.json: {'; '.join(bad)} " \
                    "(re-pin with scripts/pin_output_checksums.py only if the change is meant)"


@pytest.mark.parametrize("case", sorted(PIN.CASES))
def test_output_is_byte_identical(case: str, checksums: dict[str, dict[str, dict[str, str]]]) -> None:
    key = PIN.platform_key()
    if key not in PINNED["platforms"]:
        pytest.skip(f"no output hashes pinned for this platform ({key}); the thumbnails are checked")
    assert PIN.hashes({case: checksums[case]})[case] == PINNED["platforms"][key][case], (
        f"{case}: outputs differ from tests/data/output_checksums.json "
        "(re-pin with scripts/pin_output_checksums.py only if the change is meant)"
    )


def test_thumbnail_tolerance_catches_a_small_change() -> None:
    """A 2 % brighter output moves the thumbnail past the tolerance; the same output does not."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8), (0, 0), 3)
    a = PIN.thumbnail(cv2.imencode(".png", img)[1].tobytes())
    b = PIN.thumbnail(cv2.imencode(".png", np.clip(img * 1.02, 0, 255).astype(np.uint8))[1].tobytes())
    assert PIN.thumbnail_changes({"c": {"x.png": a}}, {"c": {"x.png": a}}) == []
    assert len(PIN.thumbnail_changes({"c": {"x.png": a}}, {"c": {"x.png": b}})) == 1
    assert PIN.thumbnail_changes({"c": {"x.png": a}}, {"c": {}}) == ["c/x.png: gone"]
