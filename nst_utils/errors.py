"""The exceptions the course raises on purpose, so callers can tell failures apart.

Every message names the file, argument or setting at fault and says what to do next.
Catch :class:`NSTError` for all of them, or one subclass:

* :class:`BadInputError`: a file, image, argument or setting that cannot be used (also a
  ``ValueError``);
* :class:`WeightsError`: VGG weights that cannot be had or are unusable (download failed,
  wrong file, NaN or all-zero tensors);
* :class:`CheckpointError`: a model or checkpoint file that is corrupt or of another kind;
* :class:`DivergenceError`: a loss became NaN or infinite during an optimisation.
"""


class NSTError(Exception):
    """Base class: an expected failure whose message says what was wrong and what to do."""


class BadInputError(NSTError, ValueError):
    """A file, image, argument or setting that cannot be used."""


class WeightsError(NSTError):
    """VGG weights that cannot be downloaded, read or used."""


class CheckpointError(NSTError):
    """A trained-model or checkpoint file that is corrupt, of another kind or incompatible."""


class DivergenceError(NSTError, ArithmeticError):
    """A loss became NaN or infinite."""
