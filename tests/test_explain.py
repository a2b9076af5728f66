"""lumachrome.explain: probes, ablations, receptive fields, uncertainty, the HTML report and the training GIF."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from lumachrome.colorizer import Colorizer
from lumachrome.data.synthetic import synthetic_photo
from lumachrome.errors import ConfigError, ImageError, ModelError
from lumachrome.explain import (
    Network,
    checkpoints_gif,
    entropy_bits,
    explain_image,
    input_gradient,
    load_or_fit_probes,
    top_channels,
)
from lumachrome.explain.analysis import receptive_box
from lumachrome.explain.probes import colour_explained, looks_like, probe_images, r_squared
from lumachrome.models import create_model

torch.set_num_threads(1)


def _randomize(model: torch.nn.Module, seed: int, head_std: float) -> torch.nn.Module:
    """A tiny untrained U-Net whose zero-initialised head is replaced by a random one (colours vary)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=g) * head_std)
        model.head.bias.zero_()
    return model.eval()


def tiny_regression(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return _randomize(create_model("unet", widths=[8, 16, 32], blocks=1), seed, 0.05)


def tiny_classification(seed: int = 0) -> torch.nn.Module:
    from lumachrome.color.bins import ABGamut

    torch.manual_seed(seed)
    model = create_model("unet", widths=[8, 16, 32], blocks=1, head="classification", num_bins=262)
    model.set_bins(ABGamut.build().centers)
    return _randomize(model, seed, 1.0)


def colorizer(model: torch.nn.Module, size: int = 64) -> Colorizer:
    return Colorizer(model, {"name": "tiny", "preprocessing": {"size": size}}, device="cpu")


@pytest.fixture
def image() -> np.ndarray:
    return synthetic_photo(96, 128, seed=3)


@pytest.fixture(scope="module")
def probe_cache(tmp_path_factory) -> Path:
    """One probe cache for the module: the reports of the same tiny model fit their probes once."""
    return tmp_path_factory.mktemp("probe-cache")


@pytest.fixture(scope="module")
def cls_report(tmp_path_factory, probe_cache) -> Path:
    """The report of a tiny classification model on a gray image with given points and layers."""
    gray = synthetic_photo(96, 128, seed=3).mean(axis=2)  # no "original colours", no true colour at the points
    return explain_image(
        gray, colorizer(tiny_classification()), tmp_path_factory.mktemp("cls") / "report",
        points=[(10, 20), (100, 50)], layers=["enc.1", "head"], probe_cache=probe_cache,
    )  # fmt: skip


# ------------------------------------------------------------------------------------ analysis
def test_network_names_and_ablations_match_the_unet_wiring() -> None:
    net = Network(tiny_regression())
    assert net.decoder_stages() == ["bottleneck", "dec.0", "dec.1"]
    # enc.0 (full resolution) feeds the last decoder stage, enc.1 the first one
    assert net.skips() == [("enc.0", "dec.1"), ("enc.1", "dec.0")]
    assert net.ablations() == ["skip:enc.0", "skip:enc.1", "bottleneck"]
    assert [net.stride(s) for s in net.decoder_stages()] == [4, 2, 1]


def test_ablation_changes_the_output_and_leaves_no_hook_behind(image) -> None:
    col = colorizer(tiny_regression())
    net = Network(col.model)
    L = torch.from_numpy(col.network_input(image))[None, None]
    base = net.run(L).ab
    for name in net.ablations():
        off = net.run(L, ablate=name).ab
        assert (off - base).abs().max() > 1e-4, name
    zero = net.run(L, ablate="skip:enc.0", mode="zero").ab
    assert not torch.allclose(zero, net.run(L, ablate="skip:enc.0", mode="mean").ab)
    assert torch.equal(net.run(L).ab, base)  # hooks removed
    # the colorizer's own prediction is the unablated pass
    assert torch.allclose(col.predict_ab_batch(L), base, atol=1e-5)
    with pytest.raises(ConfigError):
        net.run(L, ablate="skip:enc.7")


def test_global_context_ablation_switches_the_branch_off(image) -> None:
    torch.manual_seed(0)
    model = _randomize(create_model("unet", widths=[8, 16, 32], blocks=1, global_context=8), 0, 0.05)
    with torch.no_grad():
        torch.nn.init.normal_(model.glob.mlp[2].weight, std=0.5)
    net = Network(model)
    assert net.ablations() == ["skip:enc.0", "skip:enc.1", "bottleneck", "glob"]
    col = colorizer(model)
    L = torch.from_numpy(col.network_input(image))[None, None]
    plain = create_model("unet", widths=[8, 16, 32], blocks=1).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("glob.")})
    with torch.no_grad():
        # switched off, the model is its trunk without the branch
        torch.testing.assert_close(net.run(L, ablate="glob").ab, plain(L))
        assert (net.run(L).ab - plain(L)).abs().max() > 1e-3


def test_mean_ablation_keeps_the_channel_means() -> None:
    net = Network(tiny_regression())
    L = torch.rand(1, 1, 32, 32) * 100
    seen = {}
    # dec.1's stage sees cat(upsampled deeper map, skip from enc.0): the skip is the second half
    handle = net.model.dec[1].stage.register_forward_pre_hook(lambda m, a: seen.__setitem__("skip", a[0][:, 8:].clone()))
    try:
        net.run(L)
        full = seen["skip"]
        net.run(L, ablate="skip:enc.0")
        off = seen["skip"]
    finally:
        handle.remove()
    assert torch.allclose(off.mean(dim=(2, 3)), full.mean(dim=(2, 3)), atol=1e-5)
    assert float(off.std(dim=(2, 3)).max()) < 1e-5 < float(full.std(dim=(2, 3)).max())


def test_entropy_bits_uniform_and_certain() -> None:
    uniform = torch.zeros(1, 262, 4, 5)
    assert np.allclose(entropy_bits(uniform), math.log2(262), atol=1e-4)
    sure = torch.full((1, 262, 2, 2), -50.0)
    sure[:, 7] = 50.0
    assert float(entropy_bits(sure).max()) < 1e-6
    two = torch.full((1, 4, 1, 1), -50.0)
    two[:, :2] = 0.0
    assert entropy_bits(two)[0, 0] == pytest.approx(1.0, abs=1e-5)


def test_top_channels_orders_by_mean_activation() -> None:
    f = torch.zeros(1, 5, 3, 3)
    f[0, 3] = 2.0
    f[0, 1] = 1.0
    f[0, 4, 0, 0] = 9.0  # mean 1.0 as well, but index order breaks no tie here: 9/9 = 1.0
    top = top_channels(f, 2)
    assert top[0] == (3, pytest.approx(2.0))
    assert top[1][1] == pytest.approx(1.0)


def test_receptive_field_is_the_theoretical_one() -> None:
    # depth 1: enc.0 and the bottleneck are one 3x3 conv each at full resolution -> a 5x5 receptive field
    torch.manual_seed(0)
    net = Network(_randomize(create_model("unet", widths=[4], blocks=1), 0, 0.5))
    L = torch.rand(1, 1, 32, 32) * 100
    g = input_gradient(net, L, "output", 16, 16)
    assert receptive_box(g) == (14, 14, 19, 19)
    gf = input_gradient(net, L, "enc.0", 16, 16)
    assert receptive_box(gf) == (15, 15, 18, 18)
    # deeper networks see further
    deep = Network(tiny_regression())
    box = receptive_box(input_gradient(deep, torch.rand(1, 1, 64, 64) * 100, "output", 32, 32))
    assert box is not None and box[2] - box[0] > 5


# ------------------------------------------------------------------------------------ probes
def test_probe_images_leave_out_the_explained_image() -> None:
    import cv2
    import skimage.data

    astro = cv2.resize(skimage.data.astronaut(), (700, 700)).astype(np.float32) / 255
    names = [n for n, _ in probe_images(exclude=astro)]
    assert "astronaut" not in names and "coffee" in names
    assert looks_like(astro, astro[:, ::-1])
    assert not looks_like(astro, skimage.data.coffee().astype(np.float32) / 255)
    assert "astronaut" in [n for n, _ in probe_images()]


def test_probes_read_out_the_output_and_are_cached(tmp_path, image) -> None:
    col = colorizer(tiny_regression())
    net = Network(col.model)
    ps = load_or_fit_probes(net, col.network_input, size=64, exclude=image, cache=tmp_path)
    assert ps.stages() == net.decoder_stages() and not ps.from_cache
    assert ps.cache_path is not None and ps.cache_path.is_file()
    assert str(ps.cache_path).startswith(str(tmp_path))
    # the last stage is one 1x1 conv (+ a near-linear tanh) away from the output: its probe recovers it
    L = torch.from_numpy(col.network_input(image))[None, None]
    p = net.run(L, net.decoder_stages())
    ab = p.ab[0].permute(1, 2, 0).numpy()
    assert r_squared(ps.probes["dec.1"].predict(p.features["dec.1"]), ab) > 0.97
    again = load_or_fit_probes(net, col.network_input, size=64, exclude=image, cache=tmp_path)
    assert again.from_cache
    for s in ps.stages():
        assert np.allclose(again.probes[s].weight, ps.probes[s].weight)
    # other weights -> another cache entry
    other = load_or_fit_probes(Network(tiny_regression(seed=1)), col.network_input, size=64, exclude=image, cache=tmp_path)
    assert not other.from_cache and other.cache_path != ps.cache_path


def test_colour_explained_and_r_squared() -> None:
    t = np.random.default_rng(0).normal(size=(10, 10, 2)) + 5.0
    assert colour_explained(t, t) == pytest.approx(1.0)
    assert colour_explained(np.zeros_like(t), t) == pytest.approx(0.0)
    assert colour_explained(2 * t, t) == pytest.approx(0.0)
    assert colour_explained(3 * t, t) < 0
    assert math.isnan(colour_explained(t, np.zeros_like(t)))
    assert r_squared(t, t) == pytest.approx(1.0)
    assert r_squared(np.zeros_like(t) + t.mean((0, 1)), t) == pytest.approx(0.0, abs=1e-9)
    assert math.isnan(r_squared(t, np.ones_like(t)))


# ------------------------------------------------------------------------------------ report
def _report(index: Path) -> dict:
    assert index.name == "index.html" and index.is_file()
    data = json.loads((index.parent / "report.json").read_text())
    for fig in data["figures"]:
        from PIL import Image

        with Image.open(index.parent / fig["file"]) as im:
            assert im.format == "PNG" and im.size[0] > 100
        assert len(fig["caption"]) > 80
    return data


def test_explain_regression_model(tmp_path, image, probe_cache) -> None:
    index = explain_image(image, colorizer(tiny_regression()), tmp_path / "r", probe_cache=probe_cache)
    data = _report(index)
    ids = [f["id"] for f in data["figures"]]
    assert ids == ["overview", "coarse_to_fine", "feature_maps", "receptive_field", "ab_points", "ablation"]
    html = index.read_text()
    assert "regression head" in html and "no per-pixel entropy" in html
    assert data["model"]["head"] == "regression" and data["image"]["colour_input"] is True
    shares = data["numbers"]["probe_colour_explained"]
    assert list(shares) == ["bottleneck", "dec.0", "dec.1"]
    assert shares["dec.1"] > 0.95  # one 1x1 conv (+ a near-linear tanh) before the output
    assert set(data["numbers"]["ablation"]) == {"skip:enc.0", "skip:enc.1", "bottleneck"}
    assert len(data["numbers"]["points"]) == 3
    assert all(p["true_ab"] is not None for p in data["numbers"]["points"])
    # the full-resolution colorization is written too, at the input's size
    from lumachrome.imageio import load_image

    assert load_image(index.parent / "colorized.png").rgb.shape == image.shape
    for bad in ("http://", "https://", "<script", "@import", "url("):
        assert bad not in html


def test_explain_colorized_png_is_what_colorize_writes(tmp_path, image, probe_cache) -> None:
    """With a stored decoding (adaptive gain, chroma gain, flip averaging), colorized.png is the
    colorizer's output."""
    from lumachrome.adaptive import FEATURES, AdaptiveGain
    from lumachrome.imageio import load_image

    n = len(FEATURES)
    adaptive = AdaptiveGain(mean=[0.0] * n, scale=[1.0] * n, weights=[0.1] * n, bias=0.2, stretch=0.3)
    col = Colorizer(tiny_regression(), {"name": "tiny", "preprocessing": {"size": 64},
                                        "decoding": {"saturation": 1.5, "flip": True,
                                                     "adaptive_gain": adaptive.to_config()}}, device="cpu")
    index = explain_image(image, col, tmp_path / "r", probe_cache=probe_cache)
    written = load_image(index.parent / "colorized.png").rgb  # float32 in [0, 1], from 8 bits
    expected = np.clip(col.colorize_array(image), 0, 1)
    assert np.abs(written - expected).max() <= 1 / 255 + 1e-6
    html = index.read_text()
    assert "flip averaging, adaptive chroma gain x" in html and "stretch of 0.3, chroma gain x1.5" in html
    assert 0.8 <= json.loads((index.parent / "report.json").read_text())["model"]["adaptive_gain"] <= 3.5


def test_explain_classification_model_with_points_and_layers(cls_report) -> None:
    index = cls_report
    data = _report(index)
    ids = [f["id"] for f in data["figures"]]
    assert "entropy" in ids and "ab_distributions" in ids and "ab_points" not in ids
    ent = data["numbers"]["entropy_bits"]
    assert 0 < ent["mean"] < ent["max_possible"] == pytest.approx(math.log2(262))
    pts = data["numbers"]["points"]
    assert [tuple(p["xy"]) for p in pts] == [(10, 20), (100, 50)]
    assert all(p["true_ab"] is None for p in pts) and data["image"]["colour_input"] is False
    assert "regression head" not in index.read_text()
    # the chosen layers are the rows of the feature-map figure, most active channel first
    assert [r["name"] for r in data["layers"]] == ["enc.1", "head"]
    head = data["layers"][1]
    assert head["shape"][0] == 262 and len(head["top_channels"]) == 6
    means = [m for _, m in head["top_channels"]]
    assert means == sorted(means, reverse=True)


def test_explain_errors(tmp_path, image) -> None:
    col = colorizer(tiny_regression())
    with pytest.raises(ConfigError, match="outside"):
        explain_image(image, col, tmp_path, points=[(500, 3)], probe_cache=False)
    with pytest.raises(ConfigError, match="unknown layer"):
        explain_image(image, col, tmp_path, layers=["enc.9"], probe_cache=False)
    with pytest.raises(ConfigError, match="ablation"):
        explain_image(image, col, tmp_path, ablation_mode="half", probe_cache=False)
    with pytest.raises(ImageError):
        explain_image(tmp_path / "missing.png", col, tmp_path, probe_cache=False)
    with pytest.raises(ModelError, match="not a lumachrome U-Net"):
        explain_image(image, torch.nn.Conv2d(1, 2, 1), tmp_path, probe_cache=False)


def test_report_opens_offline_in_headless_chromium(cls_report, browser) -> None:
    index = cls_report
    browser.get(index.resolve().as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);"
    )
    assert len(images) == len(json.loads((index.parent / "report.json").read_text())["figures"]) >= 7
    for src, complete, width in images:
        assert complete and width > 0, src
    captions = browser.execute_script(
        "return Array.from(document.querySelectorAll('figure')).map(f => "
        "(f.querySelector('figcaption') || {innerText: ''}).innerText.trim());"
    )
    assert len(captions) == len(images) and all(len(c) > 80 for c in captions)
    page = index.resolve().as_uri()
    requests = []  # (url, the document that made it)
    for entry in browser.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            requests.append((msg["params"]["request"]["url"], msg["params"].get("documentURL", "")))
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name);")
    ours = [u for u, doc in requests if doc == page] + resources
    assert len(ours) > len(images) and all(u.startswith("file://") for u in ours), ours
    # nothing at all went to the network (the browser's own chrome:// pages are internal)
    remote = [u for u, _ in requests if u.split(":", 1)[0].lower() in ("http", "https", "ws", "wss", "ftp")]
    assert remote == []


# ------------------------------------------------------------------------------------ learning GIF
def _fake_run(tmp_path: Path, epochs: int = 3) -> Path:
    from lumachrome.imageio import save_image

    run = tmp_path / "run"
    for e in range(1, epochs + 1):
        grid = np.full((96, 192, 3), e / (epochs + 1), np.float32)
        save_image(run / "samples" / f"epoch-{e:03d}.png", grid)
    (run / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": 10 * e, "epoch": e, "psnr": 20 + e, "cf": 5.0}) + "\n" for e in range(1, epochs + 1))
    )
    return run


def test_checkpoints_gif_animates_the_sample_grids(tmp_path) -> None:
    from PIL import Image

    run = _fake_run(tmp_path)
    gif = checkpoints_gif(run, tmp_path / "out" / "learn.gif")
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 3
        means = []
        for i in range(3):
            im.seek(i)
            means.append(np.asarray(im.convert("RGB"))[40:, :, :].mean())
    assert means[0] < means[1] < means[2]  # epoch order kept
    with pytest.raises(ModelError, match="no sample grids"):
        checkpoints_gif(tmp_path / "out", tmp_path / "x.gif")
    with pytest.raises(ModelError, match="no such run folder"):
        checkpoints_gif(tmp_path / "nope", tmp_path / "x.gif")
    with pytest.raises(ImageError, match=".gif"):
        checkpoints_gif(run, tmp_path / "x.png")


def test_checkpoints_gif_rerenders_an_image_with_each_checkpoint(tmp_path, image) -> None:
    from PIL import Image

    from lumachrome.train.checkpoint import save_checkpoint

    run = _fake_run(tmp_path)
    spec = {"architecture": "unet", "args": {"widths": [8, 16, 32], "blocks": 1}, "preprocessing": {"size": 64}}
    for step, seed in ((10, 0), (20, 1)):
        model = tiny_regression(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        save_checkpoint(run, step=step, epoch=step // 10, model=model, optimizer=opt, scheduler=None,
                        config={"train": {}}, model_spec=spec, keep=5)
    gif = checkpoints_gif(run, tmp_path / "ck.gif", image=image)
    with Image.open(gif) as im:
        assert im.n_frames == 2
        frames = []
        for i in range(2):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB"), dtype=np.float32))
    assert np.abs(frames[0] - frames[1]).mean() > 0.5  # different weights, different colours


# ------------------------------------------------------------------------------------ CLI
def test_cli_explain_and_checkpoints(tmp_path, monkeypatch, image, capsys, probe_cache) -> None:
    from lumachrome.cli import main
    from lumachrome.imageio import save_image
    from lumachrome.models.io import save_model_dir

    monkeypatch.setenv("LUMACHROME_CACHE", str(probe_cache))
    model = tiny_regression()
    save_model_dir(model, tmp_path / "m", architecture="unet", args=model.args, preprocessing={"size": 64},
                   decoding=None, card="tiny", extra={"name": "tiny"})
    save_image(tmp_path / "in.png", image)
    out = tmp_path / "rep"
    rc = main(["explain", str(tmp_path / "in.png"), "--model", str(tmp_path / "m"), "-o", str(out),
               "--point", "5,6", "--device", "cpu"])
    assert rc == 0 and (out / "index.html").is_file()
    assert json.loads((out / "report.json").read_text())["numbers"]["points"][0]["xy"] == [5, 6]
    assert (probe_cache / "probes").is_dir()
    assert "report written to" in capsys.readouterr().out

    rc = main(["explain", str(tmp_path / "missing.png"), "--model", str(tmp_path / "m"), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("lumachrome: error:") and err.count("\n") == 1
    assert main(["explain", str(tmp_path / "in.png"), "--point", "nonsense", "-o", str(out)]) == 2
    assert main(["explain", "-o", str(out)]) == 2

    run = _fake_run(tmp_path)
    rc = main(["explain", "--checkpoints", str(run), "-o", str(tmp_path / "anim")])
    assert rc == 0 and (tmp_path / "anim" / "learning.gif").is_file()


# ------------------------------------------------------------------------------------ effunet
# The EfficientNet U-Net (lumachrome.models.effnet) through the same tools: its stage layout names the
# five encoder taps (strides 2 ... 32), which get linear probes too, and the decoder stage each feeds.
EFF_ENCODER = ["encoder.blocks.0", "encoder.blocks.2", "encoder.blocks.4", "encoder.blocks.10", "encoder.blocks.15"]
EFF_DECODER = ["bottleneck", "dec.0", "dec.1", "dec.2", "dec.3"]


@pytest.fixture(scope="module")
def eff_report(tmp_path_factory, probe_cache) -> Path:
    """The report of a tiny random effunet (regression) on a colour image, default points and layers."""
    from _stubs import tiny_effunet

    return explain_image(synthetic_photo(96, 128, seed=3), colorizer(tiny_effunet()),
                         tmp_path_factory.mktemp("eff") / "report", probe_cache=probe_cache)


def test_a_module_without_stage_layout_is_read_as_a_unet() -> None:
    class Legacy(torch.nn.Module):  # a U-Net by its submodule names only
        def __init__(self, unet: torch.nn.Module) -> None:
            super().__init__()
            self.enc, self.bottleneck, self.dec, self.head = unet.enc, unet.bottleneck, unet.dec, unet.head
            self.depth, self.widths = unet.depth, unet.widths

    unet = tiny_regression()
    assert Network(Legacy(unet)).layout == Network(unet).layout == unet.stage_layout()


def test_network_reads_the_effunet_stage_layout() -> None:
    from _stubs import tiny_effunet

    net = Network(tiny_effunet())
    assert net.encoder_stages() == EFF_ENCODER and net.decoder_stages() == EFF_DECODER
    assert net.probe_stages() == EFF_ENCODER + EFF_DECODER  # encoder taps probed too
    assert net.skips() == [("encoder.blocks.0", "dec.3"), ("encoder.blocks.2", "dec.2"),
                           ("encoder.blocks.4", "dec.1"), ("encoder.blocks.10", "dec.0")]
    assert net.ablations() == [f"skip:{s}" for s in EFF_ENCODER[:4]] + ["bottleneck", "glob"]
    assert net.default_layers() == ["encoder.blocks.0", "bottleneck", "dec.0", "dec.3"]
    assert [net.stride(s) for s in EFF_ENCODER] == [2, 4, 8, 16, 32]
    assert [net.stride(s) for s in EFF_DECODER] == [32, 16, 8, 4, 2] and net.stride("head") == 2
    # the strides are the real ones, and each decoder stage's skip argument is its encoder tap's output
    L = torch.rand(1, 1, 64, 96) * 100
    seen = {}
    handles = [net.model.get_submodule(d).register_forward_pre_hook(
        lambda _m, args, d=d: seen.__setitem__(d, args[1].clone())) for _, d in net.skips()]
    try:
        p = net.run(L, net.probe_stages())
    finally:
        for h in handles:
            h.remove()
    for name in net.probe_stages():
        assert tuple(p.features[name].shape[-2:]) == (64 // net.stride(name), 96 // net.stride(name)), name
    for enc, dec in net.skips():
        assert torch.equal(seen[dec], p.features[enc]), (enc, dec)


def test_effunet_ablations_and_the_scene_context_off() -> None:
    from _stubs import tiny_effunet

    model = tiny_effunet()
    net = Network(model)
    L = torch.from_numpy(colorizer(model).network_input(synthetic_photo(96, 128, seed=3)))[None, None]
    base = net.run(L).ab
    for name in net.ablations():
        assert (net.run(L, ablate=name).ab - base).abs().max() > 1e-4, name
    assert torch.equal(net.run(L).ab, base)  # hooks removed
    # switched off, the model is the same network built without the scene-vector FiLM
    plain = create_model("effunet", decoder=[16, 16, 8, 8], global_context=0).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("glob.")})
    with torch.no_grad():
        torch.testing.assert_close(net.run(L, ablate="glob").ab, plain(L))
    with pytest.raises(ConfigError, match="unknown ablation"):
        net.run(L, ablate="skip:encoder.blocks.15")  # the deepest tap is the trunk, not a skip


def test_effunet_receptive_fields() -> None:
    from _stubs import tiny_effunet

    net = Network(tiny_effunet())
    L = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 100
    # first tap: stem 3x3/2 (TF padding: none above/left) then a 3x3 depthwise -> 7x7 px, cell 8 = rows 14-20
    assert receptive_box(input_gradient(net, L, "encoder.blocks.0", 16, 16)) == (14, 14, 21, 21)
    # the stride-32 encoder sees the whole 64x64 image from one bottleneck cell (the U-Net's is local)
    assert receptive_box(input_gradient(net, L, "bottleneck", 32, 32)) == (0, 0, 64, 64)
    unet_box = receptive_box(input_gradient(Network(tiny_regression()), L, "bottleneck", 32, 32))
    assert unet_box[2] - unet_box[0] < 64
    # the output (head at 1/2, upsampled): the whole map runs, the pixel's gradient is the plain one
    g = input_gradient(net, L, "output", 21, 40)
    inp = L.clone().requires_grad_(True)
    out = net.model(inp)
    ga = torch.autograd.grad(out[0, 0, 21, 40], inp, retain_graph=True)[0]
    gb = torch.autograd.grad(out[0, 1, 21, 40], inp)[0]
    np.testing.assert_allclose(g, torch.sqrt(ga * ga + gb * gb)[0, 0].numpy(), rtol=1e-5, atol=1e-9)
    assert receptive_box(g) == (0, 0, 64, 64)  # the scene vector: every pixel counts


def test_effunet_classification_network() -> None:
    from _stubs import tiny_effunet

    model = tiny_effunet(head="classification", num_bins=6)
    model.set_bins(torch.tensor([[-40.0, 0], [40, 0], [0, -40], [0, 40], [20, 20], [-20, -20]]))
    net = Network(model)
    L = torch.rand(1, 1, 32, 64) * 100
    p = net.run(L, ["head"])
    assert p.logits.shape == (1, 6, 32, 64) and p.ab.shape == (1, 2, 32, 64)
    assert p.features["head"].shape == (1, 6, 16, 32)  # the head works at 1/2
    assert input_gradient(net, L, "output", 10, 50).max() > 0


def test_explain_effunet_report(eff_report) -> None:
    index = eff_report
    data = _report(index)
    ids = [f["id"] for f in data["figures"]]
    assert ids == ["overview", "coarse_to_fine", "encoder_probes", "feature_maps", "receptive_field",
                   "ab_points", "ablation"]
    numbers = data["numbers"]
    assert list(numbers["probe_colour_explained"]) == EFF_DECODER
    assert list(numbers["encoder_probe_colour_explained"]) == EFF_ENCODER
    assert all(v is not None for v in numbers["encoder_probe_colour_explained"].values())
    assert list(numbers["ablation"]) == [f"skip:{s}" for s in EFF_ENCODER[:4]] + ["bottleneck", "glob"]
    assert [r["name"] for r in data["layers"]] == ["encoder.blocks.0", "bottleneck", "dec.0", "dec.3"]
    ws, hs = data["model"]["working_size"]
    assert ws % 32 == 0 and hs % 32 == 0
    assert numbers["receptive_field"]["output"]["box"] == [0, 0, hs, ws]
    html = index.read_text()
    assert "EfficientNet-Lite0 encoder" in html and "encoder.blocks.10 at 1/16" in html
    assert "ImageNet classification weights" in html


def test_cli_explain_effunet_model_folder(tmp_path, monkeypatch, probe_cache, eff_report) -> None:
    from _stubs import save_tiny_effunet

    from lumachrome.cli import main
    from lumachrome.imageio import save_image

    monkeypatch.setenv("LUMACHROME_CACHE", str(probe_cache))
    folder = save_tiny_effunet(tmp_path / "m")
    save_image(tmp_path / "in.png", synthetic_photo(96, 128, seed=3))
    out = tmp_path / "rep"
    rc = main(["explain", str(tmp_path / "in.png"), "--model", str(folder), "-o", str(out), "--device", "cpu",
               "--layer", "encoder.blocks.4", "--point", "40,30", "--ablation", "zero"])
    assert rc == 0
    data = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in data["layers"]] == ["encoder.blocks.4"]
    assert data["probes"]["from_cache"]  # the same weights and size as the eff_report fixture
    assert "encoder_probes.png" in [f["file"] for f in data["figures"]]
