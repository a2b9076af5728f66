"""Training data: colour photo folders decoded on the fly, and pre-decoded packs.

* :class:`ColorFolderDataset` (``data/photos.py``): any folder tree of colour images, random
  or centre crops, raw Lab samples ``{"L": (1,S,S), "ab": (2,S,S), "rgb": (3,S,S)}``.
* :func:`build_pack` / :class:`PackDataset` / :func:`load_pack_tensor` (``data/pack.py``): the
  same images decoded once into a single safetensors file of uint8 squares.
"""

from lumachrome.data.pack import PackDataset, PackInfo, build_pack, load_pack_tensor, read_pack_info
from lumachrome.data.photos import ColorFolderDataset, ScanReport, rgb_uint8_to_sample

__all__ = [
    "ColorFolderDataset",
    "PackDataset",
    "PackInfo",
    "ScanReport",
    "build_pack",
    "load_pack_tensor",
    "read_pack_info",
    "rgb_uint8_to_sample",
]
