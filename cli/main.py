"""Entry point of `smcd-check`.

Conventions every subcommand follows (README, "CLI conventions"):

* ``--help`` on each subcommand; ``--json`` for machine-readable output where a command reports.
* Exit codes: 0 = checked and nothing wrong; 1 = a finding (violation, failed case, disproved
  theorem); 2 = usage or input error, with a one-line message naming what was wrong.
* Never a traceback for bad input: commands raise :class:`smcd_check.cli.common.InputError`
  (or click's own usage errors) and this module turns them into exit 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from smcd_check.cli.common import EXIT_INPUT, EXIT_INTERRUPTED

#: subcommand name -> "module:attribute" of its click command, imported only when used.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "decode": ("smcd_check.cli.decode", "Decode CLC messages given as hex, field by field."),
    "prove": ("smcd_check.cli.prove", "Prove the cursor and data-path theorems with z3."),
    "explore": ("smcd_check.cli.explore", "Explore every reachable state of an SMC-D system."),
    "replay": ("smcd_check.cli.replay", "Re-check a saved JSON trace against spec or target."),
    "conform": ("smcd_check.cli.conform", "Run the conformance catalogue against a target."),
    "kernel": ("smcd_check.cli.kernel", "Build and run a real Linux 6.12 loopback-ism kernel."),
    "trace": ("smcd_check.cli.trace", "Save traces to regression corpora, list, show, schema."),
    "races": ("smcd_check.cli.races", "Explore thread interleavings of the shm loopback-ism."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = SUBCOMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, short_help = entry
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            # Registered but not built yet: say so instead of pretending.
            @click.command(name=cmd_name, help=short_help + " (not available in this build)")
            def unavailable() -> None:
                raise click.ClickException(f"'{cmd_name}' is not available in this build")

            return unavailable
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing must not import every subcommand (z3, networkx...): use the registry's texts.
        rows = [(name, SUBCOMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="smcd-check")
def cli() -> None:
    """smcd-check: model checker and conformance suite for SMC-D and loopback-ism.

    Exit codes: 0 nothing wrong, 1 a finding, 2 usage or input error, 3 a run that failed
    before its verdict (a worker died), 130 interrupted.
    """


def main(argv: list[str] | None = None) -> Any:
    """Run the CLI; bad input ends in exit 2 with one line, Ctrl-C in exit 130."""
    try:
        result = cli.main(args=argv, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        # the help on stdout, and the usage error as the one line on stderr
        click.echo(exc.format_message())
        where = exc.ctx.command_path if exc.ctx is not None else "smcd-check"
        click.echo(f"smcd-check: error: no command given (see '{where} --help')", err=True)
        sys.exit(EXIT_INPUT)
    except click.UsageError as exc:
        # One line, naming what was wrong and where to look (click's default is three lines).
        where = exc.ctx.command_path if exc.ctx is not None else "smcd-check"
        click.echo(f"smcd-check: error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(EXIT_INPUT)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        click.echo("smcd-check: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if isinstance(result, int):
        sys.exit(result)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
