import random

import numpy as np
import pytest
import torch

from nst_utils import NSTError, by_mode, describe, pick_device, quick_mode, seed_everything
from nst_utils.config import weights_setting


def test_quick_mode_reads_environment(monkeypatch):
    monkeypatch.setenv("NST_QUICK", "1")
    assert quick_mode() and by_mode(512, 64) == 64
    monkeypatch.setenv("NST_QUICK", "0")
    assert not quick_mode() and by_mode(512, 64) == 512
    monkeypatch.delenv("NST_QUICK")
    assert not quick_mode()


def test_weights_setting_defaults_to_imagenet(monkeypatch):
    monkeypatch.delenv("NST_WEIGHTS", raising=False)
    assert weights_setting() == "imagenet"
    monkeypatch.setenv("NST_WEIGHTS", " random ")
    assert weights_setting() == "random"


def test_pick_device_order_and_override(monkeypatch):
    monkeypatch.delenv("NST_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device().type == "cuda"
    assert pick_device("cpu").type == "cpu"
    monkeypatch.setenv("NST_DEVICE", "cpu")
    assert pick_device().type == "cpu"


def test_pick_device_rejects_unavailable_or_unknown(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NSTError, match="not available"):
        pick_device("cuda")
    with pytest.raises(NSTError, match="unknown"):
        pick_device("tpu")


def test_seed_everything_repeats_all_generators():
    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(2))
    seed_everything(3)
    second = (random.random(), np.random.rand(), torch.rand(2))
    assert first[0] == second[0] and first[1] == second[1]
    assert torch.equal(first[2], second[2])


@pytest.mark.slow
def test_describe_names_versions_and_device():
    text = describe(torch.device("cpu"))
    assert torch.__version__ in text and "cpu" in text and "weights" in text
