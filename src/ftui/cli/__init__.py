"""The command line (DESIGN.md, Command line): ``main`` parses and dispatches (``cli.main``),
``cli.commands`` does what the subcommands do on top of the core, ``cli.follow`` prints a run's
progress on a terminal. Every subcommand is a thin call into core or the runner."""

from ftui.cli.main import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, build_parser, main

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "build_parser", "main"]
