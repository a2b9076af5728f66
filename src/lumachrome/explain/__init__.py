"""See how the network adds colour: explain reports, linear probes, ablations, training GIFs.

::

    from lumachrome.explain import explain_image, checkpoints_gif

    index = explain_image("photo.jpg", "photo", "out/explain/photo")   # -> out/explain/photo/index.html
    checkpoints_gif("runs/photo-cpu", "out/learning.gif")               # sample grids across training

The report (``index.html``, offline, with PNG figures and ``report.json``) shows: the colour each
decoder stage would predict (linear probes, :mod:`.probes`), the most active feature maps of chosen
layers and the receptive field of a pixel, per-pixel entropy and the ab distribution at chosen
points (classification models), and ablations of the skip connections and the bottleneck.
See ``docs/explain.md`` for how to read each figure.
"""

from lumachrome.explain.analysis import (
    ABLATION_MODES,
    Network,
    entropy_bits,
    input_gradient,
    top_channels,
)
from lumachrome.explain.core import explain_image, load_colorizer
from lumachrome.explain.learning import checkpoints_gif, sample_grids
from lumachrome.explain.probes import (
    PROBE_IMAGES,
    LinearProbe,
    ProbeSet,
    fit_probes,
    load_or_fit_probes,
)

__all__ = [
    "ABLATION_MODES",
    "PROBE_IMAGES",
    "LinearProbe",
    "Network",
    "ProbeSet",
    "checkpoints_gif",
    "entropy_bits",
    "explain_image",
    "fit_probes",
    "input_gradient",
    "load_colorizer",
    "load_or_fit_probes",
    "sample_grids",
    "top_channels",
]
