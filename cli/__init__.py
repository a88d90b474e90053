"""The `smcd-check` command line: one thin layer that parses arguments and calls the floors below.

Every subcommand lives in its own module here and is loaded lazily by :mod:`smcd_check.cli.main`,
so `smcd-check --help` stays fast and a broken optional dependency of one command cannot break
the others.
"""
