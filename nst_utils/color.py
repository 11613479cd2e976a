"""Colour helpers for keeping a photo's colours in style transfer (Gatys et al. 2016,
"Preserving Color in Neural Artistic Style Transfer", arXiv 1606.05897).

Two ways, both on (N, 3, H, W) float RGB tensors in [0, 1]:

* luminance-only transfer: stylise the luminance (the Y of YIQ), then put the content's
  chroma (I and Q) back: :func:`luminance_only` prepares the inputs and
  :func:`preserve_luminance` recombines;
* colour histogram matching: recolour the style image so that its mean and covariance of
  RGB values equal the content's, before transfer: :func:`match_mean_and_covariance`.
"""

from __future__ import annotations

import torch

from .errors import BadInputError

# NTSC YIQ: Y is luminance (what a black-and-white TV shows), I and Q carry the colour.
RGB_TO_YIQ = torch.tensor(
    [
        [0.299, 0.587, 0.114],
        [0.595716, -0.274453, -0.321263],
        [0.211456, -0.522591, 0.311135],
    ]
)
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)


def _check(image: torch.Tensor, name: str) -> None:
    if not isinstance(image, torch.Tensor) or image.dim() != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise BadInputError(f"{name} must be an (N, 3, H, W) RGB tensor, got {shape}.")


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,njhw->nihw", matrix.to(image), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> YIQ: channel 0 is luminance Y in [0, 1], 1-2 the chroma I, Q."""
    _check(image, "image")
    return _apply(RGB_TO_YIQ, image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yiq` (values are not clamped)."""
    _check(image, "image")
    return _apply(YIQ_TO_RGB, image)


def luminance_only(image: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
    """The luminance of ``image`` as a grey RGB image (N, 3, H, W) in [0, 1].

    With ``reference``, the luminance is shifted and scaled to the reference luminance's
    mean and standard deviation first (Gatys et al. 2016 do this to the style image so that
    its brightness range fits the content's).
    """
    luma = rgb_to_yiq(image)[:, :1]
    if reference is not None:
        ref = rgb_to_yiq(reference)[:, :1]
        luma = (luma - luma.mean()) / luma.std().clamp_min(1e-6) * ref.std() + ref.mean()
    return luma.clamp(0, 1).expand(-1, 3, -1, -1).contiguous()


def preserve_luminance(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The luminance Y of ``stylized`` with the chroma (I, Q) of ``content``, clamped to [0, 1].

    Both (N, 3, H, W) of the same size. The result has the stylised strokes and the
    content's colours.
    """
    _check(content, "content")
    if stylized.shape != content.shape:
        raise BadInputError(
            f"stylized {tuple(stylized.shape)} and content {tuple(content.shape)} must have "
            "the same shape; resize one of them first."
        )
    yiq = torch.cat([rgb_to_yiq(stylized)[:, :1], rgb_to_yiq(content)[:, 1:]], dim=1)
    return yiq_to_rgb(yiq).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    """Symmetric square root (or inverse square root) of a 3x3 covariance matrix."""
    values, vectors = torch.linalg.eigh(cov)
    values = values.clamp_min(1e-8)
    power = -0.5 if inverse else 0.5
    return vectors @ torch.diag(values**power) @ vectors.T


def match_mean_and_covariance(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Recolour ``image`` so its RGB mean and covariance equal those of ``reference``.

    A linear map ``x -> A (x - mu_i) + mu_r`` with ``A = C_r^1/2 C_i^-1/2`` (symmetric
    square roots: the "image analogies" variant in Gatys et al. 2016, section 2.1). Used
    on the style image before transfer, it gives the painting the photo's palette. Inputs
    may differ in size; the result has ``image``'s shape, clamped to [0, 1].
    """
    _check(image, "image")
    _check(reference, "reference")
    src = image.permute(1, 0, 2, 3).reshape(3, -1).double()
    ref = reference.permute(1, 0, 2, 3).reshape(3, -1).double()
    mu_s, mu_r = src.mean(1, keepdim=True), ref.mean(1, keepdim=True)
    eye = 1e-5 * torch.eye(3, dtype=src.dtype, device=src.device)
    cov_s = torch.cov(src) + eye
    cov_r = torch.cov(ref) + eye
    transform = _sqrtm(cov_r) @ _sqrtm(cov_s, inverse=True)
    out = transform @ (src - mu_s) + mu_r
    out = out.reshape(3, image.shape[0], *image.shape[2:]).permute(1, 0, 2, 3)
    return out.to(image.dtype).clamp(0, 1)


match_histogram = match_mean_and_covariance  # notebooks 03 and 05 use this name
