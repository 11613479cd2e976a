"""Stylised videos: read a video, apply any one-pass model to its frames in batches, write
a video with the original frame rate and sound (optional extra: PyAV, ``pip install
"nst-course[video]"``; torchvision's own video reading is gone from its current releases).

Any function from frames to frames works: a network of notebook 04
(``lambda f: fast_style.stylize_tensor(net, f)``), a multi-style network with its style
chosen (:func:`nst_utils.multistyle.stylize_tensor`), or AdaIN with the style's statistics
computed once (:func:`nst_utils.adain.style_stats`, then
:func:`nst_utils.adain.stylize_tensor`). Frames are stylised one by one, so the result
may flicker: :func:`flicker` measures it, and ``smoothing`` blends each output frame with
the previous one (less flicker, some ghosting on fast motion).
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from tqdm.auto import tqdm

from .errors import BadInputError
from .files import atomic_write, check_output
from .images import resize_tensor

# output suffix -> container (FFmpeg's name); each takes H.264 video and AAC sound
CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}


def require_av() -> ModuleType:
    """The PyAV module, or a one-line BadInputError saying how to install it."""
    try:
        return importlib.import_module("av")
    except ImportError:
        raise BadInputError(
            'video needs the optional package PyAV ("av"), which is not installed; run: '
            'pip install "nst-course[video]"'
        ) from None


@dataclass
class VideoReport:
    """What :func:`stylize_video` wrote: frame count, frame rate (frames per second),
    (height, width) in px, whether sound was kept, and the flicker of input and output
    (:func:`flicker`, in [0, 1] pixel units)."""

    frames: int
    fps: float
    size: tuple[int, int]
    audio: bool
    input_flicker: float
    output_flicker: float

    @property
    def flicker_ratio(self) -> float:
        """Output flicker / input flicker: 1 is as steady as the input, above 1 flickers."""
        return self.output_flicker / self.input_flicker if self.input_flicker else math.inf


def flicker(frames: torch.Tensor) -> float:
    """Mean absolute difference between consecutive frames of (T, 3, H, W) in [0, 1].

    Compare a stylised video's value with its input's: motion alone gives the input's
    value, anything above it is flicker the stylisation added.
    """
    if frames.dim() != 4 or len(frames) < 2:
        raise BadInputError(f"frames of shape {tuple(frames.shape)}: give (T, 3, H, W), T >= 2.")
    return (frames[1:] - frames[:-1]).abs().mean().item()


class _Flicker:
    """The running mean of :func:`flicker` over a stream of frame batches."""

    def __init__(self) -> None:
        self.last: torch.Tensor | None = None
        self.total, self.count = 0.0, 0

    def add(self, frames: torch.Tensor) -> None:
        seq = frames if self.last is None else torch.cat([self.last, frames])
        if len(seq) > 1:
            self.total += (seq[1:] - seq[:-1]).abs().mean((1, 2, 3)).sum().item()
            self.count += len(seq) - 1
        self.last = frames[-1:]

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else 0.0


def _target_size(height: int, width: int, max_size: int | None) -> tuple[int, int]:
    """(height, width) after scaling the longest side to ``max_size`` (never enlarging),
    rounded down to even numbers (H.264 in yuv420p needs them)."""
    scale = min(1.0, max_size / max(height, width)) if max_size else 1.0
    return (max(2, round(height * scale) // 2 * 2), max(2, round(width * scale) // 2 * 2))


def _frames(batch: list[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """RGB uint8 arrays (H, W, 3) -> (B, 3, h, w) float in [0, 1] at ``size``: cropped by a
    pixel where only evenness is missing, else resized (bicubic, antialiased)."""
    frames = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).float() / 255
    height, width = frames.shape[-2:]
    if height - size[0] <= 1 and width - size[1] <= 1:
        return frames[..., : size[0], : size[1]].contiguous()
    return resize_tensor(frames, size)


def stylize_video(
    source: str | os.PathLike,
    output: str | os.PathLike,
    stylize: Callable[[torch.Tensor], torch.Tensor],
    *,
    batch_size: int = 8,
    max_size: int | None = None,
    smoothing: float = 0.0,
    quality: int = 18,
    progress: bool = True,
) -> VideoReport:
    """Stylise every frame of the video ``source`` with ``stylize`` ((B, 3, H, W) in [0, 1]
    -> the same shape) and write ``output`` (.mp4, .mov or .mkv: H.264 video).

    The frame rate is the input's (its average rate: a variable-rate input comes out at a
    constant rate, with the same number of frames); the first audio track is copied
    unchanged where the container takes its codec, else re-encoded as AAC. ``batch_size``
    frames go through ``stylize`` at once; ``max_size`` (px) shrinks the frames' longest
    side first; odd sides lose their last row or column. ``smoothing`` in [0, 1): each
    output frame becomes ``(1 - s) * frame + s * previous output`` (0: off). ``quality``:
    x264's CRF, 0 (lossless) .. 51 (worst; 18 looks lossless). The output is written
    atomically, and checked before any work.
    """
    av = require_av()
    source = Path(source).expanduser()
    if not source.is_file():
        raise BadInputError(f"source {source}: no such video file.")
    output = check_output(output, inputs=[source], suffixes=CONTAINERS, what="output")
    for name, value, low, high in (("batch_size", batch_size, 1, 4096),
                                   ("quality", quality, 0, 51)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadInputError(f"{name}={value!r}: give a whole number in {low} .. {high}.")
    if not (isinstance(smoothing, (int, float)) and 0 <= smoothing < 1):
        raise BadInputError(f"smoothing={smoothing!r}: give a number in [0, 1), 0 for none.")
    try:
        reader = av.open(str(source))
    except av.FFmpegError as err:
        raise BadInputError(f"source {source}: not a video PyAV can read ({err}).") from None
    with reader, atomic_write(output) as handle:
        if not reader.streams.video:
            raise BadInputError(f"source {source}: no video stream in this file.")
        video_in = reader.streams.video[0]
        video_in.thread_type = "AUTO"
        rate = video_in.average_rate or video_in.guessed_rate or Fraction(25)
        size = _target_size(video_in.height, video_in.width, max_size)
        audio_in = reader.streams.audio[0] if reader.streams.audio else None
        writer = av.open(handle, "w", format=CONTAINERS[output.suffix.lower()])
        with writer:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            video_out = writer.add_stream(codec, rate=rate)
            video_out.height, video_out.width = size
            video_out.pix_fmt = "yuv420p"
            video_out.options = {"crf": str(quality)}
            audio_out, copy_audio = None, False
            if audio_in is not None:
                copy_audio = audio_in.codec_context.name in writer.supported_codecs
                audio_out = (writer.add_stream_from_template(audio_in) if copy_audio
                             else writer.add_stream("aac", rate=audio_in.rate))  # fmt: skip
            inputs, outputs = _Flicker(), _Flicker()
            written, previous, batch = 0, None, []
            bar = tqdm(total=video_in.frames or None, unit="frame", disable=not progress,
                       desc=f"stylising {source.name}")  # fmt: skip

            def flush() -> None:
                nonlocal written, previous
                frames = _frames(batch, size)
                styled = stylize(frames).detach().float().cpu().clamp(0, 1)
                if styled.shape != frames.shape:
                    raise BadInputError(
                        f"stylize turned frames {tuple(frames.shape)} into "
                        f"{tuple(styled.shape)}; it must keep their shape."
                    )
                if smoothing:
                    for k in range(len(styled)):
                        if previous is not None:
                            styled[k] = (1 - smoothing) * styled[k] + smoothing * previous
                        previous = styled[k]
                inputs.add(frames)
                outputs.add(styled)
                pixels = (styled * 255 + 0.5).byte().permute(0, 2, 3, 1).numpy()
                for array in pixels:
                    frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                    frame.pts = written
                    writer.mux(video_out.encode(frame))
                    written += 1
                bar.update(len(batch))
                batch.clear()

            for packet in reader.demux(*(s for s in (video_in, audio_in) if s is not None)):
                if packet.stream is audio_in:
                    if copy_audio and packet.dts is not None:
                        packet.stream = audio_out
                        writer.mux(packet)
                    elif not copy_audio:
                        for frame in packet.decode():
                            writer.mux(audio_out.encode(frame))
                    continue
                for frame in packet.decode():
                    batch.append(frame.to_ndarray(format="rgb24"))
                    if len(batch) == batch_size:
                        flush()
            if batch:
                flush()
            writer.mux(video_out.encode())
            if audio_out is not None and not copy_audio:
                writer.mux(audio_out.encode())
            bar.close()
        if written == 0:  # nothing is written to output
            raise BadInputError(f"source {source}: its video stream holds no frames.")
    return VideoReport(written, float(rate), size, audio_in is not None, inputs.value,
                       outputs.value)  # fmt: skip


def read_frames(source: str | os.PathLike, max_size: int | None = None) -> Iterator[torch.Tensor]:
    """The frames of a video, one (1, 3, H, W) float tensor in [0, 1] at a time (for
    looking at a few, or measuring :func:`flicker`); ``max_size`` as in :func:`stylize_video`."""
    av = require_av()
    with av.open(str(Path(source).expanduser())) as reader:
        stream = reader.streams.video[0]
        size = _target_size(stream.height, stream.width, max_size)
        for frame in reader.decode(stream):
            yield _frames([frame.to_ndarray(format="rgb24")], size)
