"""scripts/sweep_decoding.py: the fixed-gain predictor, around gray and around a given colour."""

from __future__ import annotations

import torch
from _scripts import load_script


def _script():
    return load_script("sweep_decoding")


class _Stub:
    """What working_size_predictor uses of a Colorizer: saturation, flip, predict_ab_working."""

    def __init__(self, ab: torch.Tensor) -> None:
        self.ab, self.saturation, self.flip, self.calls = ab, None, None, []

    def predict_ab_working(self, L, size):
        self.calls.append(size)
        return self.ab * self.saturation


def test_gain_around_gray_is_the_colorizers_saturation():
    ab = torch.tensor([3.0, -4.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    col = _Stub(ab)
    out = _script().working_size_predictor(col, 192, 1.3, flip=True)(torch.zeros(1, 1, 4, 4))
    assert col.saturation == 1.3 and col.flip is True and col.calls == [192]
    torch.testing.assert_close(out, ab * 1.3)


def test_gain_around_a_colour_scales_the_departure_from_it():
    ab = torch.tensor([3.0, -4.0]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    col = _Stub(ab)
    out = _script().working_size_predictor(col, 160, 1.5, centre=(2.0, 6.0))(torch.zeros(1, 1, 4, 4))
    assert col.saturation == 1.0  # the raw prediction, the gain applied around the centre
    want = torch.tensor([2.0 + 1.5 * (3.0 - 2.0), 6.0 + 1.5 * (-4.0 - 6.0)]).view(1, 2, 1, 1).expand(1, 2, 4, 4)
    torch.testing.assert_close(out, want)
    # the centre itself stays where it is, whatever the gain
    col.ab = torch.tensor([2.0, 6.0]).view(1, 2, 1, 1)
    torch.testing.assert_close(_script().working_size_predictor(col, 160, 3.0, centre=(2.0, 6.0))(None), col.ab)
