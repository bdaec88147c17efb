"""The one error type users see: every failure caused by bad input is a WikimixError with a one-line message."""


class WikimixError(Exception):
    """A failure the user can act on; the CLI prints `error: <message>` on one line and exits 2."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # one line, always


class ConfigError(WikimixError):
    """A bad configuration value (unknown option, out of range, wrong type)."""
