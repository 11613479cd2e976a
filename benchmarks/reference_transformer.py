"""Reference for the feed-forward benchmarks: Johnson et al.'s paper-size image transformation
network written the common way (written for this course, not copied from a tutorial).

Plain eager PyTorch, NCHW float32, no tricks: one module per layer, reflection padding in
front of each conv, instance normalisation, nearest-neighbour x2 upsampling then a conv,
every conv with a bias, ReLU modules called in ``forward``. It has no padding to a multiple
of 4, so it is meant for sizes divisible by 4 (like 256 or 512), where its output has the
input's size.

:func:`from_transformer_net` copies the weights of a paper-size
:class:`nst_utils.networks.TransformerNet` into a new reference network (the biases that
``TransformerNet`` leaves out before a norm layer become zeros, which a norm cancels anyway),
so both compute the same function and their outputs agree within 1e-3.

Run it as a script to time the reference against the course's inference paths::

    python benchmarks/reference_transformer.py --size 256 512 --repeats 7 --threads 2
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nst_utils.errors import BadInputError
from nst_utils.networks import TransformerNet, count_parameters, infer, prepare_for_inference


class PaddedConv(nn.Module):
    """Reflection padding of kernel_size // 2, then a conv: keeps H, W at stride 1."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ResBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))) with 3x3 convs."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = PaddedConv(channels, channels, 3)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = PaddedConv(channels, channels, 3)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return x + self.in2(self.conv2(out))


class UpConv(nn.Module):
    """Nearest-neighbour x2 upsampling, then a 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = PaddedConv(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class ReferenceTransformer(nn.Module):
    """(N, 3, H, W) -> (N, 3, H, W), H and W divisible by 4; channels 32-64-128, 5 blocks."""

    def __init__(self):
        super().__init__()
        self.conv1 = PaddedConv(3, 32, 9)
        self.in1 = nn.InstanceNorm2d(32, affine=True)
        self.conv2 = PaddedConv(32, 64, 3, stride=2)
        self.in2 = nn.InstanceNorm2d(64, affine=True)
        self.conv3 = PaddedConv(64, 128, 3, stride=2)
        self.in3 = nn.InstanceNorm2d(128, affine=True)
        self.res = nn.ModuleList(ResBlock(128) for _ in range(5))
        self.up1 = UpConv(128, 64)
        self.in4 = nn.InstanceNorm2d(64, affine=True)
        self.up2 = UpConv(64, 32)
        self.in5 = nn.InstanceNorm2d(32, affine=True)
        self.conv_out = PaddedConv(32, 3, 9)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        for block in self.res:
            y = block(y)
        y = self.relu(self.in4(self.up1(y)))
        y = self.relu(self.in5(self.up2(y)))
        return self.conv_out(y)


def _pairs(ref: ReferenceTransformer, net: TransformerNet) -> list[tuple[nn.Module, nn.Module]]:
    """(reference layer, TransformerNet layer) pairs holding the same weights."""
    pairs = [
        (ref.conv1.conv, net.stem.conv),
        (ref.in1, net.stem.norm),
        (ref.conv2.conv, net.down1.conv),
        (ref.in2, net.down1.norm),
        (ref.conv3.conv, net.down2.conv),
        (ref.in3, net.down2.norm),
    ]
    for mine, theirs in zip(ref.res, net.blocks, strict=True):
        first, second = theirs.body
        pairs += [(mine.conv1.conv, first.conv), (mine.in1, first.norm)]
        pairs += [(mine.conv2.conv, second.conv), (mine.in2, second.norm)]
    pairs += [
        (ref.up1.conv.conv, net.up1[1].conv),
        (ref.in4, net.up1[1].norm),
        (ref.up2.conv.conv, net.up2[1].conv),
        (ref.in5, net.up2[1].norm),
        (ref.conv_out.conv, net.head.conv),
    ]
    return pairs


@torch.no_grad()
def from_transformer_net(net: TransformerNet) -> ReferenceTransformer:
    """A reference network computing the same function as the paper-size ``net``."""
    if net.spec != TransformerNet().spec:
        raise ValueError(f"the reference has the paper's layout only; got {net.spec['kwargs']}")
    ref = ReferenceTransformer().to(next(net.parameters()).device)
    for mine, theirs in _pairs(ref, net):
        mine.weight.copy_(theirs.weight)
        mine.bias.copy_(theirs.bias if theirs.bias is not None else torch.zeros_like(mine.bias))
    return ref.train(net.training)


def _busy_clock() -> Callable[[], float]:
    """A clock of the CPU time all processes used (Linux /proc/stat); zero elsewhere."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return lambda: 0.0
    tick = os.sysconf("SC_CLK_TCK")  # the unit of /proc/stat

    def busy() -> float:
        fields = [int(v) for v in stat.read_text().split("\n", 1)[0].split()[1:]]
        return (sum(fields) - fields[3] - fields[4]) / tick  # minus idle and iowait

    return busy


def time_once(run: Callable[[], object], busy: Callable[[], float]) -> tuple[float, bool]:
    """(wall seconds of one ``run()``, whether it ran undisturbed). Redone, up to 20 times,
    while other programs use over a tenth of a CPU core beside it: on a shared machine that
    keeps most of their noise out."""
    for _ in range(20):
        before, start, cpu = busy(), time.perf_counter(), time.process_time()
        run()
        wall = time.perf_counter() - start
        if busy() - before - (time.process_time() - cpu) < 0.1 * wall + 0.02:
            return wall, True
        time.sleep(0.5)
    return wall, False


def eager(net: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``net`` called the plain way: under ``torch.no_grad``, NCHW float32."""

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(x)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs="+", default=[256, 512], help="px, square")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per path and size")
    parser.add_argument("--threads", type=int, default=2, help="torch / ONNX Runtime threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    paper, lite = TransformerNet().eval(), TransformerNet.lite().eval()
    reference = from_transformer_net(paper).eval()
    paths = {"reference (eager)": eager(reference)}
    for name, net in (("paper", paper), ("lite", lite)):
        paths[f"{name}: eager"] = eager(net)
        paths[f"{name}: prepare+infer"] = functools.partial(infer, prepare_for_inference(net))
        try:
            from nst_utils.export import OnnxNetwork, export_onnx

            with tempfile.TemporaryDirectory() as folder:
                file = export_onnx(net, Path(folder) / f"{name}.onnx")
                paths[f"{name}: ONNX Runtime"] = OnnxNetwork(file)
        except BadInputError as err:
            print(f"{name}: ONNX Runtime skipped ({err})")
    print(f"parameters: paper {count_parameters(paper):,}, lite {count_parameters(lite):,}")
    busy = _busy_clock()
    for size in args.size:
        x = torch.rand(1, 3, size, size)
        expected = paths["reference (eager)"](x).clamp(0, 1)
        for name, run in paths.items():
            if not name.startswith("lite"):
                assert (run(x).clamp(0, 1) - expected).abs().max() < 1e-3, name
            run(x)  # warm-up
        times: dict[str, list[float]] = {name: [] for name in paths}
        disturbed = 0
        for _ in range(args.repeats):  # alternate, so slow phases of the machine hit all
            for name, run in paths.items():
                seconds, quiet = time_once(functools.partial(run, x), busy)
                times[name].append(seconds)
                disturbed += not quiet
        base = statistics.median(times["reference (eager)"])
        print(
            f"\n{size}x{size}, {args.threads} threads, medians of {args.repeats} runs "
            f"({disturbed} of them disturbed by other programs)"
        )
        print("| path | ms | speed-up vs reference |\n|---|---|---|")
        for name, samples in times.items():
            median = statistics.median(samples)
            print(f"| {name} | {median * 1000:.0f} | {base / median:.2f}x |")


if __name__ == "__main__":
    main()
