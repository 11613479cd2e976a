"""Stylised videos (nst_utils.video, optional extra PyAV) on tiny generated clips: frame
count, size, frame rate and sound survive, flicker is measured, bad inputs are refused and
a missing extra says how to install it."""

import sys
from fractions import Fraction

import numpy as np
import pytest
import torch

from nst_utils import BadInputError
from nst_utils.multistyle import FixedStyle, MultiStyleNet
from nst_utils.video import flicker, read_frames, stylize_video

pytestmark = pytest.mark.usefixtures("one_thread")


def make_clip(path, frames=12, size=(24, 32), fps=10, audio="aac", container=None):
    """A clip whose red channel scrolls, with a 440 Hz tone as long as the video."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream("libx264", rate=fps)
        video.height, video.width = size
        video.pix_fmt = "yuv420p"
        sound = out.add_stream(audio, rate=8000) if audio else None
        for i in range(frames):
            pixels = np.full((*size, 3), 100, np.uint8)
            pixels[..., 0] = (np.arange(size[1]) * 8 + i * 10) % 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())
        if sound is not None:
            samples = np.sin(2 * np.pi * 440 * np.arange(8000 * frames // fps) / 8000)
            chunk = av.AudioFrame.from_ndarray(
                (samples * 10000).astype(np.int16)[None], format="s16", layout="mono"
            )
            chunk.sample_rate, chunk.pts = 8000, 0
            out.mux(sound.encode(chunk))
            out.mux(sound.encode())
    return path


def describe(path):
    """(frames decoded, (height, width), frame rate, audio codec or None, duration s)."""
    import av

    with av.open(str(path)) as clip:
        stream = clip.streams.video[0]
        rate, size = stream.average_rate, (stream.height, stream.width)
        audio = clip.streams.audio[0].codec_context.name if clip.streams.audio else None
        duration = clip.duration / 1e6 if clip.duration else None
        frames = sum(1 for _ in clip.decode(video=0))
    return frames, size, rate, audio, duration


def test_a_stylised_clip_keeps_frames_size_rate_and_sound(tmp_path):
    clip = make_clip(tmp_path / "in.mp4")
    net = FixedStyle(MultiStyleNet.lite(2, output="tanh").eval(), [0.5, 0.5])
    report = stylize_video(clip, tmp_path / "out.mp4", lambda f: net(f).detach(), batch_size=5,
                           progress=False)  # fmt: skip
    frames, size, rate, audio, duration = describe(tmp_path / "out.mp4")
    assert (frames, size, rate, audio) == (12, (24, 32), Fraction(10), "aac")
    assert duration == pytest.approx(describe(clip)[4], abs=0.15)
    assert (report.frames, report.size, report.fps, report.audio) == (12, (24, 32), 10.0, True)
    inverted = stylize_video(clip, tmp_path / "neg.mkv", lambda f: 1 - f, progress=False)
    assert inverted.flicker_ratio == pytest.approx(1.0, abs=1e-6)  # |1-a - (1-b)| = |a - b|
    frames = torch.cat(list(read_frames(tmp_path / "neg.mkv")))
    assert frames.shape == (12, 3, 24, 32)
    assert flicker(frames) == pytest.approx(inverted.output_flicker, rel=0.2)  # after x264


def test_sound_the_container_cannot_take_is_re_encoded_and_smoothing_steadies(tmp_path):
    clip = make_clip(tmp_path / "in.mov", audio="pcm_mulaw", container="mov")
    noisy = stylize_video(clip, tmp_path / "a.mp4", lambda f: torch.rand_like(f), progress=False)
    calm = stylize_video(clip, tmp_path / "b.mp4", lambda f: torch.rand_like(f), progress=False,
                         smoothing=0.8)  # fmt: skip
    assert describe(tmp_path / "b.mp4")[3] == "aac"
    assert calm.output_flicker < 0.5 * noisy.output_flicker


def test_sizes_are_made_even_and_max_size_shrinks(tmp_path):
    clip = make_clip(tmp_path / "odd.mp4", size=(26, 34), audio=None)
    report = stylize_video(clip, tmp_path / "o.mp4", lambda f: f, max_size=17, progress=False)
    assert report.size == (12, 16) and not report.audio
    assert describe(tmp_path / "o.mp4")[:2] == (12, (12, 16))


def test_flicker_by_hand():
    frames = torch.zeros(3, 3, 2, 2)
    frames[1] = 1.0
    assert flicker(frames) == 1.0
    with pytest.raises(BadInputError, match="T >= 2"):
        flicker(frames[:1])


def test_bad_inputs_are_refused_before_any_work(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", audio=None)
    with pytest.raises(BadInputError, match="unknown suffix '.gif'"):
        stylize_video(clip, tmp_path / "out.gif", lambda f: f)
    with pytest.raises(BadInputError, match="is also an input"):
        stylize_video(clip, clip, lambda f: f)
    with pytest.raises(BadInputError, match="no such video file"):
        stylize_video(tmp_path / "none.mp4", tmp_path / "out.mp4", lambda f: f)
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(BadInputError, match="not a video PyAV can read"):
        stylize_video(tmp_path / "text.mp4", tmp_path / "out.mp4", lambda f: f)
    with pytest.raises(BadInputError, match="batch_size=0"):
        stylize_video(clip, tmp_path / "out.mp4", lambda f: f, batch_size=0)
    with pytest.raises(BadInputError, match="smoothing=1"):
        stylize_video(clip, tmp_path / "out.mp4", lambda f: f, smoothing=1)
    with pytest.raises(BadInputError, match="it must keep their shape"):
        stylize_video(clip, tmp_path / "out.mp4", lambda f: f[..., :8], progress=False)
    assert not (tmp_path / "out.mp4").exists()


def test_a_missing_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(BadInputError, match=r'PyAV \("av"\), which is not installed; run: pip'):
        stylize_video(tmp_path / "in.mp4", tmp_path / "out.mp4", lambda f: f)
