"""``reasoning-gym play``: solve one problem by typing steps, with a reward after each.

Each line typed is one step. The environment prints the step's reward and PRM score;
a final answer such as ``\\boxed{42}`` ends the episode and shows the outcome. End of
input (Ctrl-D) stops the episode early.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``reasoning-gym play``."""
    parser.add_argument("--env", default="Reasoning-v0", help="environment id or task name")
    parser.add_argument(
        "--index", type=int, default=None, help="problem index (default: drawn with --seed)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the problem draw")
    parser.add_argument(
        "--tokenizer",
        default="byte",
        help="tokenizer: byte, a short model name, a folder or a hub id",
    )
    parser.add_argument("--data", default=None, help="data file of a dataset task (JSONL)")
    parser.add_argument(
        "--prm", default="auto", help="process reward model: auto, none, oracle, mc, ..."
    )
    parser.add_argument("--max-steps", type=int, default=16, help="steps before truncation")


def _format_score(value: object) -> str:
    return "-" if value is None else f"{float(value):.3f}"


def run(args: argparse.Namespace) -> int:
    """Play one episode on stdin/stdout; returns the exit status."""
    import gymnasium as gym

    import reasoning_gym  # noqa: F401  (registers the environment ids)
    from reasoning_gym.registration import resolve_env_id

    if args.index is not None and args.index < 0:
        raise ValueError(f"--index {args.index} must be non-negative")
    env_kwargs = {
        "tokenizer": args.tokenizer,
        "prm": None if args.prm == "none" else args.prm,
        "max_steps": args.max_steps,
    }
    if args.data is not None:
        env_kwargs["task_kwargs"] = {"path": str(args.data)}
    env = gym.make(resolve_env_id(args.env), **env_kwargs)
    options = {"index": args.index} if args.index is not None else None
    env.reset(seed=args.seed, options=options)
    base = env.unwrapped
    print(f"Problem {base.problem.id}")
    print(base.problem.question)
    print(f"Instruction: {base.task.instruction}")
    print("Type one step per line; end with a final answer such as \\boxed{42}. Ctrl-D stops.")

    total = 0.0
    info: dict = {}
    terminated = truncated = False
    while not (terminated or truncated):
        try:
            line = input(f"step {base.get_state().num_steps + 1}> ")
        except EOFError:
            print("\ninput ended; the episode stops unfinished")
            break
        _, reward, terminated, truncated, info = env.step(line)
        total += float(reward)
        print(f"  reward {float(reward):+.3f}  PRM score {_format_score(info.get('prm_score'))}")
        if info.get("invalid_step"):
            print("  (empty step: it earns the invalid-step reward)")

    if terminated or truncated:
        ending = "final answer" if terminated else "step limit reached"
        print(f"Episode over ({ending}). Return {total:+.3f}")
        if "gold_answer" in info:
            verdict = "correct" if info.get("correct") else "wrong"
            print(f"Your answer: {info.get('answer')!r}  gold: {info['gold_answer']!r}  {verdict}")
    return 0
