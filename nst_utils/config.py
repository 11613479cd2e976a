"""Settings read from environment variables: quick mode and the VGG weights policy.

``NST_QUICK=1`` makes notebooks and tests use tiny images and few steps.
``NST_WEIGHTS`` chooses the VGG weights: ``imagenet`` (default), ``random`` or a file path.
``NST_ARCH`` picks the network, ``vgg19`` (default, as in the papers) or ``vgg16``.
``NST_DEVICE`` forces a device (``cpu``, ``cuda``, ``mps``) instead of the automatic choice.
"""

from __future__ import annotations

import os
from typing import TypeVar

from .errors import BadInputError

QUICK_ENV = "NST_QUICK"
WEIGHTS_ENV = "NST_WEIGHTS"
ARCH_ENV = "NST_ARCH"
DEVICE_ENV = "NST_DEVICE"

T = TypeVar("T")


TRUE = {"1", "true", "yes", "on"}
FALSE = {"", "0", "false", "no", "off"}


def quick_mode() -> bool:
    """True when ``NST_QUICK`` is 1/true/yes/on (tests and CI set it), False when it is unset
    or 0/false/no/off; any other value is an error rather than a silent "off"."""
    value = os.environ.get(QUICK_ENV, "").strip().lower()
    if value not in TRUE | FALSE:
        raise BadInputError(
            f"{QUICK_ENV}={os.environ[QUICK_ENV]!r} is not understood; use 1 (quick) or 0 (full)."
        )
    return value in TRUE


def by_mode(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode, else ``full``: ``size = by_mode(512, 64)``."""
    return quick if quick_mode() else full


def weights_setting() -> str:
    """The weights policy from ``NST_WEIGHTS``: 'imagenet' (default), 'random' or a path."""
    return os.environ.get(WEIGHTS_ENV, "").strip() or "imagenet"


def default_arch() -> str:
    """The VGG variant from ``NST_ARCH``: 'vgg19' (default) or 'vgg16'."""
    return os.environ.get(ARCH_ENV, "").strip().lower() or "vgg19"
