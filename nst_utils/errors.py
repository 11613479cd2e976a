"""The one exception type the course raises for bad input, so readers can catch it."""


class NSTError(Exception):
    """Bad input or settings; the message names the culprit and says what to do next."""
