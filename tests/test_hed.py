"""The HED VGG16 builder: the Keras layout read right, Caffe's preprocessing folded into the
first convolution exactly (away from the border), clear errors."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nst_utils import BadInputError
from nst_utils.hed import BLOCKS, CAFFE_MEAN_BGR, CONV_INDICES, IMAGENET_MEAN, IMAGENET_STD, convert

h5py = pytest.importorskip("h5py")


@pytest.fixture
def fake_h5(tmp_path):
    """A file with HED's group layout and small random convolutions (4 channels)."""
    rng = np.random.default_rng(0)
    path = tmp_path / "hed.weights.h5"
    kernels = []
    with h5py.File(path, "w") as f:
        channels = 3
        for block, count in enumerate(BLOCKS, start=1):
            for i in range(count):
                kernel = rng.standard_normal((3, 3, channels, 4)).astype(np.float32)
                bias = rng.standard_normal(4).astype(np.float32)
                group = f.create_group(f"block{block}/layers/conv2d{f'_{i}' if i else ''}/vars")
                group["0"], group["1"] = kernel, bias
                kernels.append((kernel, bias))
                channels = 4
    return path, kernels


def test_every_conv_lands_at_its_torchvision_index(fake_h5):
    path, kernels = fake_h5
    state = convert(path)
    assert sorted(state) == sorted(
        f"features.{i}.{kind}" for i in CONV_INDICES for kind in ("weight", "bias")
    )
    for index, (kernel, bias) in list(zip(CONV_INDICES, kernels, strict=True))[1:]:
        expected = torch.from_numpy(kernel).permute(3, 2, 0, 1)  # HWIO -> OIHW
        assert torch.equal(state[f"features.{index}.weight"], expected)
        assert torch.equal(state[f"features.{index}.bias"], torch.from_numpy(bias))


def test_the_first_conv_sees_normalised_rgb_as_the_original_saw_caffe_bgr(fake_h5):
    path, kernels = fake_h5
    state = convert(path)
    rgb = torch.rand(1, 3, 12, 10, generator=torch.Generator().manual_seed(1))
    mean, std = (
        torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
        torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
    )
    ours = F.conv2d(
        (rgb - mean) / std, state["features.0.weight"], state["features.0.bias"], padding=1
    )
    bgr = (rgb * 255).flip(1) - torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    kernel, bias = (torch.from_numpy(a) for a in kernels[0])
    original = F.conv2d(bgr, kernel.permute(3, 2, 0, 1), bias, padding=1)
    interior = (..., slice(1, -1), slice(1, -1))  # zero padding pads another value there
    scale = original.abs().max()
    assert (ours[interior] - original[interior]).abs().max() <= 1e-5 * scale
    assert (ours - original).abs().max() > 1e-3 * scale  # the border does differ


def test_a_wrong_file_is_one_line_naming_it(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.zeros(2)
    with pytest.raises(BadInputError, match=r"other\.h5: not the HED weights file"):
        convert(other)
    with pytest.raises(BadInputError, match="not the HED weights file"):
        convert(tmp_path / "missing.h5")
