"""Self-grading exercises for the notebooks.

An exercise is a function the reader completes (its stub returns ``None``). The check cell
calls :func:`check` with the reader's answer and the package's own answer:

* not attempted yet (``None``): a note, and the notebook keeps running (so the untouched
  notebook still runs top to bottom in tests);
* right: a short confirmation;
* wrong: an ``AssertionError`` that says *what* differs (shape, dtype, how far off, where)
  without printing the expected values, so the answer is not given away.

The solutions notebooks call the same checks with finished answers.
"""

from __future__ import annotations

from typing import Any

import torch


def _describe_difference(got: torch.Tensor, expected: torch.Tensor, rtol: float, atol: float):
    if tuple(got.shape) != tuple(expected.shape):
        return (
            f"the shape is {tuple(got.shape)}; it should be {len(expected.shape)}-dimensional"
            f" with shape {tuple(expected.shape)}"
        )
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    if not torch.isfinite(got).all():
        return "the result holds NaN or infinite values"
    close = torch.isclose(got, expected, rtol=rtol, atol=atol)
    if close.all():
        return None
    scale = expected.abs().mean().item() or 1.0
    error = (got - expected).abs().max().item() / scale
    ratio = (got.abs().mean() / expected.abs().mean().clamp(min=1e-30)).item()
    hint = (
        f" (your values are on average {ratio:.3g} times the expected size)"
        if abs(ratio - 1) > 0.01
        else ""
    )
    where = (~close).nonzero()[0].tolist()
    return (
        f"{(~close).sum().item()} of {close.numel()} values are off, the worst by "
        f"{error:.2g} relative to the typical value; first at index {where}{hint}"
    )


def check(
    name: str, got: Any, expected: Any, *, rtol: float = 1e-4, atol: float = 1e-6
) -> bool | None:
    """Compare a reader's answer with the expected one; see the module docstring.

    ``got`` and ``expected``: tensors, numbers, or equal-length sequences of them.
    Returns True when right and None when not attempted (so a check cell shows no stray
    ``False`` under it, and ``assert check(...)`` in a solution fails on an unfinished
    answer); raises AssertionError when wrong.
    """
    if got is None:
        print(f"{name}: not attempted yet (the function still returns None). Fill in the TODO.")
        return None
    items = (
        list(zip(got, expected, strict=False))
        if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple))
        else [(got, expected)]
    )
    if isinstance(expected, (list, tuple)) and len(got) != len(expected):
        raise AssertionError(f"{name}: {len(got)} results where {len(expected)} are expected.")
    for i, (g, e) in enumerate(items):
        label = f"{name}" + (f", item {i}" if len(items) > 1 else "")
        if isinstance(e, torch.Tensor):
            if not isinstance(g, torch.Tensor):
                raise AssertionError(f"{label}: expected a tensor, got a {type(g).__name__}.")
            problem = _describe_difference(g, e, rtol, atol)
        else:
            try:
                ok = abs(float(g) - float(e)) <= atol + rtol * abs(float(e))
            except (TypeError, ValueError):
                ok = g == e
            problem = None if ok else "the value is not right yet"
        if problem:
            raise AssertionError(f"{label}: {problem}. Look again at the formula in the text.")
    print(f"{name}: correct.")
    return True
