"""Shipped models give byte-identical outputs on the sample photos (the checksums pinned in
tests/data/output_checksums.json by scripts/pin_output_checksums.py).

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
    assert set(PINNED) == set(PIN.CASES)


@pytest.mark.parametrize("case", sorted(PIN.CASES))
def test_output_is_byte_identical(case: str, checksums: dict[str, dict[str, str]]) -> None:
    assert checksums[case] == PINNED[case], (
        f"{case}: outputs differ from tests/data/output_checksums.json "
        "(re-pin with scripts/pin_output_checksums.py only if the change is meant)"
    )
