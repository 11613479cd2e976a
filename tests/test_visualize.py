import pytest
import torch

import nst_utils as nst
from nst_utils import NSTError, VGGFeatures
from nst_utils.visualize import (
    feature_grid,
    filter_grid,
    layer_output,
    maximize_activation,
    picture_widget,
    reconstruct,
    to_png,
)


@pytest.fixture(scope="module")
def net() -> VGGFeatures:
    with pytest.warns(UserWarning, match="RANDOM"):
        return VGGFeatures(["relu2_1"], arch="vgg16", weights="random")


def _image(size: int = 40) -> torch.Tensor:
    """A smooth test picture: two gradients and a bright square, (1, 3, size, size)."""
    ramp = torch.linspace(0, 1, size)
    img = torch.stack([ramp.view(1, -1).expand(size, size), ramp.view(-1, 1).expand(size, size),
                       torch.full((size, size), 0.3)])  # fmt: skip
    img[:, size // 4 : size // 2, size // 4 : size // 2] = 0.9
    return img.unsqueeze(0)


def test_feature_grid_shape_and_range():
    act = torch.randn(1, 10, 6, 5)
    grid = feature_grid(act, ncols=4, pad=1)
    assert grid.shape == (3 * 7 - 1, 4 * 6 - 1)  # 3 rows of 6, 4 columns of 5, 1 px gaps
    assert grid.min() >= 0 and grid.max() <= 1
    tile = grid[:6, :5]  # channel 0, stretched to its own [0, 1]
    assert tile.min() == 0 and tile.max() == 1
    assert torch.all(grid[6, :] == 1)  # the padding row is white


def test_feature_grid_picks_channels_in_order():
    act = torch.zeros(4, 3, 3)
    act[2, 1, 1] = 5.0
    grid = feature_grid(act, channels=[2, 0], ncols=2, pad=0)
    assert grid.shape == (3, 6)
    assert grid[1, 1] == 1 and grid[:, :3].sum() == 1  # channel 2 first, one bright pixel
    assert torch.all(grid[:, 3:] == 0)  # an all-zero channel stays black, no NaN


def test_feature_grid_rejects_bad_input():
    with pytest.raises(NSTError, match="one image"):
        feature_grid(torch.rand(2, 4, 3, 3))
    with pytest.raises(NSTError, match="expects"):
        feature_grid(torch.rand(3, 3))
    with pytest.raises(NSTError, match="not in 0..3"):
        feature_grid(torch.rand(4, 3, 3), channels=[1, 4])
    with pytest.raises(NSTError, match="ncols"):
        feature_grid(torch.rand(4, 3, 3), ncols=0)


def test_filter_grid_shape_and_grey_zero():
    w = torch.zeros(10, 3, 3, 3)
    w[0, 0, 1, 1] = 2.0  # one red centre weight
    w[1] = -1.0
    grid = filter_grid(w, ncols=5, pad=1, scale=2)
    assert grid.shape == (3, 2 * 7 - 1, 5 * 7 - 1)  # tiles of 3*2=6 px, 1 px gaps
    assert grid[0, 2, 2] == 1.0 and grid[1, 2, 2] == 0.5  # red up, green at zero = grey
    assert torch.allclose(grid[:, :6, 7:13], torch.zeros(3, 6, 6))  # all-negative -> black
    assert torch.allclose(grid[:, 7:, :6], torch.full((3, 6, 6), 0.5))  # all-zero -> grey


@pytest.mark.slow
def test_filter_grid_rejects_non_rgb_filters(net):
    with pytest.raises(NSTError, match="conv1_1"):
        filter_grid(net.net.conv1_2.weight)
    with pytest.raises(NSTError, match="scale"):
        filter_grid(net.net.conv1_1.weight, scale=0)


@pytest.mark.slow
def test_filter_grid_of_the_real_first_layer(net):
    grid = filter_grid(net.net.conv1_1.weight)  # 64 filters, 8 per row
    assert grid.shape == (3, 8 * 4 - 1, 8 * 4 - 1)


@pytest.mark.slow
def test_layer_output_reaches_unreturned_layers(net):
    x = _image(16)
    conv = layer_output(net, x, "conv2_1")
    assert conv.shape == (1, 128, 8, 8)
    assert torch.allclose(torch.relu(conv), net(x)["relu2_1"])
    with pytest.raises(NSTError, match="stops at relu2_1"):
        layer_output(net, x, "conv3_1")


@pytest.mark.slow
def test_maximize_activation_excites_the_channel(net):
    channel = 7
    start = 0.5 + 0.05 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    before = layer_output(net, start, "conv2_1")[0, channel].mean().item()
    image = maximize_activation(net, "relu2_1", channel, size=32, steps=30, progress=False)
    after = layer_output(net, image, "conv2_1")[0, channel].mean().item()
    assert image.shape == (1, 3, 32, 32)
    assert image.min() >= 0 and image.max() <= 1
    assert after > before + 1.0 and after > 3 * abs(before)


@pytest.mark.slow
def test_maximize_activation_octaves_and_errors(net):
    image = maximize_activation(net, "conv1_2", 0, size=24, steps=6, octaves=2, progress=False)
    assert image.shape == (1, 3, 24, 24)
    with pytest.raises(NSTError, match="channel 128"):
        maximize_activation(net, "relu2_1", 128, size=16, steps=1, progress=False)


@pytest.mark.slow
def test_reconstruction_loss_falls_tenfold(net):
    result = reconstruct(net, "relu2_1", _image(40), steps=40, progress=False)
    loss = result.history["content"]
    assert len(loss) == 40
    assert loss[-1] < loss[0] / 10
    assert result.image.shape == (1, 3, 40, 40)
    with pytest.raises(NSTError, match="relu3_1"):
        reconstruct(net, "relu3_1", _image(16), steps=1, progress=False)


@pytest.mark.slow
def test_to_png_of_tensor_figure_and_refusal():
    import io

    import matplotlib
    import matplotlib.pyplot as plt
    from PIL import Image

    matplotlib.use("Agg")
    png = to_png(_image(24))
    assert Image.open(io.BytesIO(png)).size == (24, 24)
    fig, ax = plt.subplots(figsize=(2, 1))
    ax.plot([0, 1])
    assert to_png(fig).startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)  # closed, so no front end shows it again
    with pytest.raises(NSTError, match="not a str"):
        to_png("picture.png")


def test_picture_widget_draws_now_and_on_every_change():
    widgets = pytest.importorskip("ipywidgets")
    calls = []

    def draw(size):
        calls.append(size)
        return _image(size)

    box = picture_widget(draw, size=widgets.IntSlider(value=16, min=8, max=32))
    controls, view = box.children
    assert calls == [16] and bytes(view.value).startswith(b"\x89PNG")
    first = bytes(view.value)
    controls.children[0].value = 24  # what moving the slider does
    assert calls == [16, 24] and bytes(view.value) != first
    assert controls.out.outputs == ()  # nothing shown in the Output widget


def test_loss_plot_collects_and_draws_every_term():
    plot = nst.LossPlot(["content", "style"], ylabel="weighted loss", title="run")
    for step, (c, s) in zip((10, 20, 30), ((3.0, 9.0), (2.0, 5.0), (1.5, 4.0)), strict=True):
        plot(step, {"content": c, "style": s, "total": c + s})
    assert plot.steps == [10, 20, 30]
    assert plot.values == {"content": [3.0, 2.0, 1.5], "style": [9.0, 5.0, 4.0]}
    lines = {line.get_label(): line for line in plot.ax.get_lines()}
    assert sorted(lines) == ["content", "style"]
    assert list(lines["style"].get_ydata()) == [9.0, 5.0, 4.0]
    assert list(lines["style"].get_xdata()) == [10, 20, 30]
    assert plot.ax.get_ylabel() == "weighted loss" and plot.ax.get_title() == "run"


def test_loss_plot_names_a_term_the_run_does_not_report():
    plot = nst.LossPlot("perceptual")
    with pytest.raises(nst.BadInputError, match="no loss term 'perceptual'; it reports total"):
        plot(1, {"total": 1.0})
    with pytest.raises(nst.BadInputError, match="at least one loss term"):
        nst.LossPlot([])
