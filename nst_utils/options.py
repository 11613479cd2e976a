"""Settings declared once: config dataclass fields that carry their help text, and the
command-line options derived from them.

A method's config dataclass declares each setting with :func:`option`::

    size: int = option(512, "longest side of the output, px")

:func:`add_options` turns every such field into ``--size`` (type, default, choices and
help taken from the field) and :func:`config_from_args` builds the dataclass back from
the parsed arguments, so the parser, the config and ``--help`` cannot drift apart.
Field types understood: ``int``, ``float``, ``str``, ``bool`` (``--x`` / ``--no-x``),
``dict[str, float]`` (layer weights written ``relu1_1:0.5,relu2_1``) and ``X | None``.

The same metadata checks a config: :func:`check_fields` refuses a value of the wrong type,
outside the field's bounds (``low``, ``high``, ``below``) or not one of its ``choices``,
with one line in one wording (``steps must be a whole number >= 1, got 0.``); a config's
own ``check()`` adds only what involves several fields. Nothing here imports PyTorch, so
``nst --help`` starts at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import BadInputError


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    choices: Sequence[Any] | None = None,
    metavar: str | None = None,
    default_help: str | None = None,
    cli: bool = True,
    low: float | None = None,
    high: float | None = None,
    below: float | None = None,
) -> Any:
    """A dataclass field with its command-line help and its valid values.

    ``factory`` makes mutable defaults (dicts); ``choices`` limits the values;
    ``default_help`` replaces the printed default (e.g. "NST_ARCH, else vgg19");
    ``cli=False`` keeps the field out of the command line. A number lies in ``low`` ..
    ``high`` (or up to, not including, ``below``); a float field with no ``low`` must be
    > 0 (a rate, a scale), a whole number field with no ``low`` >= 0.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "metavar": metavar,
        "default_help": default_help,
        "cli": cli,
        "low": low,
        "high": high,
        "below": below,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def parse_layers(text: str) -> dict[str, float]:
    """``'relu1_1,relu2_1:0.5'`` -> ``{'relu1_1': 1.0, 'relu2_1': 0.5}``; '' -> {}."""
    layers: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, weight = item.partition(":")
        try:
            layers[name.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"bad layer weight in {item!r}: use NAME or NAME:NUMBER"
            ) from None
    return layers


def format_layers(layers: dict[str, float]) -> str:
    """Inverse of :func:`parse_layers`: ``relu1_1:1,relu2_1:0.5``."""
    return ",".join(f"{name}:{weight:g}" for name, weight in layers.items()) or "none"


def parse_float(text: str) -> float:
    """A finite float, or an argparse error naming the text."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def parse_floats(text: str) -> list[float]:
    """``'0.7,0.3'`` -> ``[0.7, 0.3]`` (finite numbers only)."""
    return [parse_float(x.strip()) for x in text.split(",") if x.strip()]


def parse_path(text: str) -> Path:
    """A path with ``~`` expanded: the one place the command line expands it."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give a file or folder name")
    return Path(text).expanduser()


def _base_type(annotation: Any) -> tuple[Any, bool]:
    """(type without None, whether None is allowed) for ``X`` or ``X | None``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return annotation, False


def cli_fields(cls: type) -> list[dataclasses.Field]:
    """The fields of config class ``cls`` that appear on the command line."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("cli", False)]


def add_options(parser: argparse.ArgumentParser, cls: type, title: str | None = None) -> None:
    """Add one ``--field-name`` option per command-line field of config class ``cls``."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(title or f"{cls.__name__} settings")
    defaults = cls()
    for f in cli_fields(cls):
        kind, optional = _base_type(hints[f.name])
        default = getattr(defaults, f.name)
        meta = f.metadata
        kwargs: dict[str, Any] = {"dest": f.name, "default": default}
        shown = meta["default_help"]
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(kind) is dict:
            kwargs["type"] = parse_layers
            kwargs["metavar"] = meta["metavar"] or "LAYERS"
            shown = shown or format_layers(default)
        else:
            kwargs["type"] = {float: parse_float, int: int, str: str}[kind]
            if meta["choices"]:
                kwargs["choices"] = meta["choices"]
            else:
                kwargs["metavar"] = meta["metavar"] or {float: "X", int: "N", str: "TEXT"}[kind]
        if shown is None:
            shown = "none" if default is None and optional else str(default)
        text = meta["help"]
        if kind is not bool:  # argparse's BooleanOptionalAction prints its own default
            text += f" (default: {shown})"
        group.add_argument("--" + f.name.replace("_", "-"), help=text, **kwargs)


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """The config dataclass ``cls`` that parsed command-line arguments describe."""
    return cls(**{f.name: getattr(args, f.name) for f in cli_fields(cls)})


def check_whole(name: str, value: object, low: int = 0, high: int | None = None) -> int:
    """``value`` if it is a whole number (not a bool) in ``low`` .. ``high``, else a
    one-line :class:`BadInputError` naming ``name``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        span = f">= {low}" if high is None else f"from {low} to {high}"
        raise BadInputError(f"{name} must be a whole number {span}, got {value!r}.")
    return value


def check_number(
    name: str,
    value: object,
    low: float | None = 0.0,
    high: float | None = None,
    below: float | None = None,
) -> float:
    """``value`` if it is a finite number in ``low`` .. ``high`` (or up to, not including,
    ``below``); ``low=None``: > 0. Else a one-line :class:`BadInputError` naming ``name``."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (value <= 0 if low is None else value < low):
        ok = False
    if ok and ((high is not None and value > high) or (below is not None and value >= below)):
        ok = False
    if not ok:
        if high is not None or below is not None:
            top = f"{high:g}" if high is not None else f"below {below:g}"
            span = f"a number from {low or 0:g} to {top}"
        else:
            span = "a positive number" if low is None else f"finite and >= {low:g}"
        raise BadInputError(f"{name} must be {span}, got {value!r}.")
    return float(value)


def check_choice(name: str, value: object, choices: Sequence[Any]) -> Any:
    """``value`` if it is one of ``choices``, else a one-line :class:`BadInputError`."""
    if value not in choices or not any(type(value) is type(c) for c in choices):  # 4.0, True
        raise BadInputError(f"{name} must be one of {list(choices)}, got {value!r}.")
    return value


def check_layer_weights(name: str, layers: object) -> dict[str, float]:
    """``layers`` if it maps layer names to finite weights >= 0, else a one-line error."""
    if not isinstance(layers, Mapping) or not all(isinstance(k, str) for k in layers):
        raise BadInputError(f"{name} must map layer names to weights, got {layers!r}.")
    bad = {k: w for k, w in layers.items() if not _finite_nonnegative(w)}
    if bad:
        raise BadInputError(f"{name}: layer weights must be finite and >= 0, got {bad}.")
    return dict(layers)


def _finite_nonnegative(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value >= 0)  # fmt: skip


def check_fields(config: Any) -> None:
    """Check every field of the config dataclass ``config`` against its type and its
    :func:`option` metadata (choices, bounds); the first bad one raises
    :class:`BadInputError` in the wording of :func:`check_whole`, :func:`check_number`,
    :func:`check_choice` or :func:`check_layer_weights`."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value, meta = getattr(config, f.name), f.metadata
        kind, optional = _base_type(hints[f.name])
        if value is None and optional:
            continue
        choices = meta.get("choices")
        if choices:
            check_choice(f.name, value, choices)
        elif kind is bool:
            if not isinstance(value, bool):
                raise BadInputError(f"{f.name} must be True or False, got {value!r}.")
        elif kind is int:
            check_whole(f.name, value, int(meta.get("low") or 0), meta.get("high"))
        elif kind is float:
            check_number(f.name, value, meta.get("low"), meta.get("high"), meta.get("below"))
        elif typing.get_origin(kind) is dict:
            check_layer_weights(f.name, value)
        elif kind is str and not isinstance(value, str):
            raise BadInputError(f"{f.name} must be a string, got {value!r}.")
