"""The `wikimix` command. Each verb group lives in wikimix/commands/<name>.py and registers itself here.

wikimix --help
"""

from __future__ import annotations

import sys

import typer

from wikimix.commands import corpus, evaluate, run, shards, significance, train, wiki
from wikimix.errors import WikimixError

app = typer.Typer(
    name="wikimix",
    help="Extreme code-switched Wikipedia corpora and diffusion LMs trained on them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (shards, wiki, corpus, significance, train, evaluate, run):
    module.register(app)


def main() -> None:
    """Entry point: bad input of any kind ends as one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)  # click returns the exit code of typer.Exit here
        if isinstance(code, int) and code:
            sys.exit(code)
    except WikimixError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            print(f"error: {exc.format_message()}", file=sys.stderr)
            sys.exit(exc.exit_code)
        raise


if __name__ == "__main__":
    main()
