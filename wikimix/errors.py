"""The one error type users see: every failure caused by bad input is a WikimixError with a one-line message."""


class WikimixError(Exception):
    """A failure the user can act on; the CLI prints `error: <message>` on one line and exits 2."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))  # one line, always


class ConfigError(WikimixError):
    """A bad configuration value (unknown option, out of range, wrong type)."""


def run_or_exit(main) -> None:
    """Run a script's main(); a WikimixError ends as one `error:` line and exit code 2 (bench scripts)."""
    import sys

    try:
        main()
    except WikimixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
