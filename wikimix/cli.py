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


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Click's exception base classes: typer raises those of its bundled copy, plain click its own."""
    import click

    types: list[type[Exception]] = [click.exceptions.ClickException]
    try:
        from typer._click.exceptions import ClickException as TyperClickException

        types.append(TyperClickException)
    except ImportError:  # an older typer that uses the installed click
        pass
    return tuple(types)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_message(exc: Exception) -> str:
    """A usage error as one line, naming the command whose --help explains it."""
    message = _one_line(exc.format_message())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and getattr(ctx, "command_path", None):
        message += f" (see: {ctx.command_path} --help)"
    return message


def main(argv: list[str] | None = None) -> None:
    """Entry point. Every user mistake and bad input ends as one `error: ...` line on stderr and exit 2;
    exit 1 is left to `wikimix shards verify` finding changed files. A bare command group prints its
    help and exits 0. Anything else is a bug and keeps its traceback."""
    usage_errors = _usage_error_types()
    try:
        code = app(args=argv, prog_name="wikimix", standalone_mode=False)  # returns typer.Exit's code
        if isinstance(code, int) and code:
            sys.exit(code)
    except WikimixError as exc:
        _fail(str(exc))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except usage_errors as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `wikimix`, `wikimix shards`: asking for help
            print(exc.format_message())  # type: ignore[attr-defined]
            sys.exit(0)
        _fail(_usage_message(exc))
    except OSError as exc:  # a path the user gave that is missing, unreadable, a file where a dir belongs
        where = f": {exc.filename}" if exc.filename else ""
        _fail(f"{exc.strerror or exc}{where}")


def _fail(message: str) -> None:
    print(f"error: {_one_line(message)}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
