"""Tests for lumachrome.data.line_aug (data.line_aug): line thickness, jitter and darkness on the A side."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from lumachrome.data.domain_pack import PairedBatcher, to_unit, write_domain_pack
from lumachrome.data.line_aug import LineAugment
from lumachrome.errors import ConfigError
from lumachrome.train.config import RunConfig


def _drawing(n: int = 4, size: int = 48) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 line art (black 3 px outlines on white) ``(n, 1, s, s)`` and its colour art ``(n, 3, s, s)``."""
    rng = np.random.default_rng(0)
    lines, colours = [], []
    for _ in range(n):
        line = np.full((size, size), 255, np.uint8)
        colour = np.full((size, size, 3), 255, np.uint8)
        for _ in range(2):
            cx, cy, r = (int(v) for v in rng.integers([14, 14, 5], [34, 34, 12]))
            cv2.circle(colour, (cx, cy), r, tuple(int(v) for v in rng.integers(40, 220, 3)), -1)
            cv2.circle(line, (cx, cy), r, 0, 3)
        cv2.line(line, (4, 40), (44, 36), 0, 1)  # a 1 px stroke too
        lines.append(line)
        colours.append(colour)
    A = torch.from_numpy(np.stack(lines))[:, None].contiguous()
    B = torch.from_numpy(np.stack(colours)).permute(0, 3, 1, 2).contiguous()
    return A, B


def _dark(x: torch.Tensor) -> int:
    return int((x < 0).sum())  # darker than mid-grey (128 of 255)


def _params(aug: LineAugment, n: int, **fixed) -> dict[str, torch.Tensor]:
    p = aug.draw(n, torch.Generator().manual_seed(0))
    base = {"t": torch.zeros(n, dtype=torch.long), "shift": torch.zeros(n, 2), "field": torch.zeros_like(p["field"]),
            "dark": torch.ones(n), "gamma": torch.ones(n)}
    base.update({k: v for k, v in fixed.items()})
    return base


def test_deterministic_under_a_seed_and_different_across_seeds():
    A = to_unit(_drawing()[0])
    aug = LineAugment()
    one = aug(A, torch.Generator().manual_seed(3))
    two = aug(A, torch.Generator().manual_seed(3))
    other = aug(A, torch.Generator().manual_seed(4))
    assert torch.equal(one, two)
    assert not torch.equal(one, other)
    assert not torch.equal(one, A) and one.shape == A.shape and one.dtype == A.dtype
    assert float(one.min()) >= -1.0 and float(one.max()) <= 1.0


def test_thickness_moves_the_dark_pixel_count_in_its_direction():
    A = to_unit(_drawing()[0])
    aug = LineAugment(thickness=1.0, shift=0, elastic=0, darkness=0, gamma=1)
    counts = {}
    for t in (-2, -1, 0, 1, 2):  # in 0.5 px steps of the half-width
        out = aug.apply(A, _params(aug, A.shape[0], t=torch.full((A.shape[0],), t)))
        counts[t] = _dark(out)
    assert counts[0] == _dark(A)
    assert counts[-2] < counts[-1] < counts[0] < counts[1] < counts[2], counts
    # 1 px of half-width more or less on 3 px outlines: ~5/3 or ~1/3 of the ink (less on curves and the 1 px stroke)
    assert counts[2] > 1.4 * counts[0] and counts[-2] < 0.6 * counts[0]


def test_thinning_does_not_delete_a_thin_line():
    line = torch.full((1, 1, 32, 32), 1.0)
    line[0, 0, 16, 4:28] = -1.0  # a 1 px black stroke
    aug = LineAugment(thickness=1.0, shift=0, elastic=0, darkness=0, gamma=1)
    for t in (-1, -2):
        out = aug.apply(line, _params(aug, 1, t=torch.tensor([t])))
        assert float(out[0, 0, 16, 8:24].max()) < -0.5  # still a dark stroke, not paper


def test_all_amplitudes_zero_is_the_identity():
    A = to_unit(_drawing()[0])
    aug = LineAugment(thickness=0, shift=0, elastic=0, darkness=0, gamma=1)
    assert torch.allclose(aug(A, torch.Generator().manual_seed(0)), A, atol=1e-6)


def test_shift_moves_the_lines_and_stays_within_its_bound():
    A = to_unit(_drawing(1)[0])
    aug = LineAugment(thickness=0, shift=3, elastic=0, darkness=0, gamma=1)
    out = aug.apply(A, _params(aug, 1, shift=torch.tensor([[3.0, -2.0]])))

    def centroid(x):
        ink = (1 - x[0, 0]) / 2
        ys, xs = torch.meshgrid(torch.arange(ink.shape[0]), torch.arange(ink.shape[1]), indexing="ij")
        return float((ink * xs).sum() / ink.sum()), float((ink * ys).sum() / ink.sum())

    (x0, y0), (x1, y1) = centroid(A), centroid(out)
    assert abs((x1 - x0) - 3.0) < 0.3 and abs((y1 - y0) + 2.0) < 0.3
    # random draws: offsets and the elastic field never exceed their amplitudes
    aug = LineAugment(shift=2.0, elastic=1.5)
    p = aug.draw(64, torch.Generator().manual_seed(1))
    assert float(p["shift"].abs().max()) <= 2.0 and float(p["field"].abs().max()) <= 1.5
    assert set(p["t"].tolist()) <= {-2, -1, 0, 1, 2}


def test_darkness_and_gamma_keep_paper_white():
    A = to_unit(_drawing(2)[0])
    aug = LineAugment(thickness=0, shift=0, elastic=0, darkness=0.5, gamma=2)
    out = aug.apply(A, _params(aug, 2, dark=torch.tensor([0.5, 1.0]), gamma=torch.tensor([1.0, 2.0])))
    paper = A == 1.0
    assert torch.equal(out[paper], A[paper])
    ink = A == -1.0
    assert torch.allclose(out[0][ink[0]], torch.zeros(()), atol=1e-6)  # half the ink: mid-grey
    assert torch.allclose(out[1][ink[1]], -torch.ones(()), atol=1e-6)  # full ink stays black


@pytest.mark.parametrize("kw, msg", [({"thickness": -1}, "thickness"), ({"shift": 20}, "shift"),
                                     ({"darkness": 1.0}, "darkness"), ({"gamma": 0.5}, "gamma"),
                                     ({"elastic": float("nan")}, "elastic"), ({"elastic_cells": 2.5}, "integer")])
def test_bad_parameters_are_one_line_errors(kw, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        LineAugment(**kw)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="one-channel"):
        LineAugment()(torch.zeros(2, 3, 8, 8), torch.Generator())


# ------------------------------------------------------------------------------------ batcher
def _batches(a_augment, n=3, seed=0, **kw):
    A, B = _drawing(6)
    b = PairedBatcher(A, B, 32, 4, seed=seed, a_augment=a_augment, **kw)
    return [next(b) for _ in range(n)]


def test_batcher_changes_a_only_and_off_gives_the_old_batches():
    plain = _batches(None)
    again = _batches(None)
    aug = _batches(LineAugment())
    for p, q, r in zip(plain, again, aug):
        assert torch.equal(p["A"], q["A"]) and torch.equal(p["B"], q["B"])  # off: deterministic, as before
        assert torch.equal(r["B"], p["B"])  # the colour target is untouched (same crops, flips, order)
        assert not torch.equal(r["A"], p["A"])
    assert all(torch.equal(x["A"], y["A"]) for x, y in zip(aug, _batches(LineAugment())))  # same seed, same A
    assert not torch.equal(aug[0]["A"], _batches(LineAugment(), seed=1)[0]["A"])


def test_batcher_resumes_the_augmentation_and_ranks_split_one_draw():
    A, B = _drawing(6)
    b = PairedBatcher(A, B, 32, 4, seed=0, a_augment=LineAugment())
    next(b)
    state = b.state_dict()
    assert "a_generator" in state
    want = next(b)
    c = PairedBatcher(A, B, 32, 4, seed=0, a_augment=LineAugment())
    c.load_state_dict(state)
    got = next(c)
    assert torch.equal(got["A"], want["A"]) and torch.equal(got["B"], want["B"])
    assert "a_generator" not in PairedBatcher(A, B, 32, 4).state_dict()  # off: the old state layout
    whole = next(PairedBatcher(A, B, 32, 4, seed=5, a_augment=LineAugment()))
    halves = [next(PairedBatcher(A, B, 32, 4, seed=5, rank=r, world_size=2, a_augment=LineAugment()))
              for r in (0, 1)]
    assert torch.equal(torch.cat([h["A"] for h in halves]), whole["A"])


# ------------------------------------------------------------------------------------ config / trainer
def test_config_line_aug_is_off_by_default_and_checked():
    cfg = RunConfig()
    assert cfg.data.line_aug is False
    with pytest.raises(ConfigError, match="data.line_aug: only for paired line-art training"):
        RunConfig.from_dict({"data": {"line_aug": True}, "train": {"regime": "cyclegan"},
                             "model": {"architecture": "unet_gen"}})
    with pytest.raises(ConfigError, match="data.line_shift: must be in"):
        RunConfig.from_dict({"data": {"line_shift": 9}})


@pytest.fixture(scope="module")
def line_packs(tmp_path_factory):
    root = tmp_path_factory.mktemp("line-packs")
    A, B = _drawing(8, 36)
    write_domain_pack(root / "sketch.safetensors", A=A, B=B, domain="sketch", split="train", a_channels=["line"])
    write_domain_pack(root / "nir.safetensors", A=A, B=B, domain="nir", split="train", a_channels=["nir"])
    return root


def _args(pack, out, *extra):
    return ["--data.pack", str(pack), "--train.regime", "pix2pix", "--model.architecture", "unet_gen",
            "--model.args", '{"width": 8, "depth": 3}', "--gan.lambda_gan", "0", "--data.size", "32",
            "--data.val_size", "32", "--train.steps", "2", "--train.batch_size", "2", "--train.progress", "false",
            "--train.epoch_steps", "2", "--train.device", "cpu", "--optim.warmup_steps", "0",
            "--train.out", str(out), *extra]


def test_training_with_line_aug_runs_and_refuses_other_domains(line_packs, tmp_path, capsys):
    from lumachrome.train.cli import train_main

    out = tmp_path / "run"
    assert train_main(_args(line_packs / "sketch.safetensors", out, "--data.line_aug", "true",
                            "--data.line_thickness", "0.5")) == 0
    assert (out / "model" / "config.json").exists()
    from lumachrome.cli import main

    capsys.readouterr()
    rc = main(["train", *_args(line_packs / "nir.safetensors", tmp_path / "bad", "--data.line_aug", "true")])
    err = capsys.readouterr().err
    assert rc == 1 and "side A is ['nir'], not line art" in err and len(err.strip().splitlines()) == 1, err
