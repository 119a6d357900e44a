"""Entry point of the ``reasoning-gym`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from reasoning_gym.cli.dispatch import add_lazy_subcommands, run_chosen
from reasoning_gym.errors import ReasoningGymError

#: Subcommand -> (module, help). Each module has add_arguments(parser) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("reasoning_gym.cli.list_cmd", "list environments, tasks, agents, PRMs and models"),
    "eval": ("reasoning_gym.cli.eval_cmd", "run an agent on an environment and report accuracy"),
    "play": ("reasoning_gym.cli.play_cmd", "play one episode in the terminal"),
    "models": ("reasoning_gym.cli.models_cmd", "fetch and list local models"),
    "prm": ("reasoning_gym.cli.prm_cmd", "label data for, train and evaluate PRMs"),
    "train": ("reasoning_gym.cli.train_cmd", "train a policy (ppo, star, grpo, ...)"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="reasoning-gym",
        description="Reasoning as an MDP: evaluate and train language-model policies.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    command_argv = [arg for arg in argv if arg not in ("-v", "--verbose", "-q", "--quiet")]
    add_lazy_subcommands(parser, COMMANDS, command_argv, dest="command")
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_chosen(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ReasoningGymError, ValueError, FileNotFoundError, FileExistsError) as error:
        # Bad input from the user: print the message (it names the value and the fix).
        if args.verbose:
            raise
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
