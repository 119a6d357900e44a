"""Lazy subcommand dispatch: only the chosen subcommand's module is imported."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping, Sequence


def add_lazy_subcommands(
    parser: argparse.ArgumentParser,
    commands: Mapping[str, tuple[str, str]],
    argv: Sequence[str],
    dest: str,
) -> None:
    """Add one subparser per entry of ``commands`` (name -> (module, help)).

    Only the module of the subcommand named in ``argv`` is imported, so ``--help`` and
    light commands stay fast. Each module provides ``add_arguments(parser)`` and
    ``run(args) -> int``.
    """
    subparsers = parser.add_subparsers(dest=dest, required=True, metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module_name, help_text) in commands.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(_module=module_name)
        if name == chosen:
            # Nested dispatchers (``train``) read the words after their own name here.
            sub.remaining_argv = list(argv[list(argv).index(name) + 1 :])
            importlib.import_module(module_name).add_arguments(sub)


def run_chosen(args: argparse.Namespace) -> int:
    """Run the ``run(args)`` function of the module that the chosen subcommand names."""
    return int(importlib.import_module(args._module).run(args) or 0)
