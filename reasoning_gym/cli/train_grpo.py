"""`reasoning-gym train grpo`: TRL's GRPOTrainer (or RLOOTrainer) on a Reasoning task.

Example::

    reasoning-gym train grpo --env Reasoning-Arithmetic-v0 --model smollm2-135m \\
        --steps 50 --num-generations 4 --output-dir runs/grpo-arith

By default the model solves each problem through the environment's tools (``step`` and
``answer``) and the environment scores the rollout. With ``--no-environment`` the task's
verifier and PRM score free-text completions instead, which ``--trainer rloo`` requires.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of `train grpo` to ``parser``."""
    add = parser.add_argument
    add("--env", required=True, help="environment id or task name, e.g. Reasoning-Arithmetic-v0")
    add("--model", default=None, help="short name, saved model folder, hub id or .gguf file")
    add("--trainer", choices=("grpo", "rloo"), default="grpo", help="TRL trainer (default: grpo)")
    add(
        "--no-environment",
        dest="use_environment",
        action="store_false",
        help="score free-text completions instead of tool calls into the environment",
    )
    add(
        "--reward-mode",
        choices=("outcome", "process", "both"),
        default="outcome",
        help="verifier score, PRM aggregate over steps, or their sum (default: outcome)",
    )
    add("--prm", default=None, help="PRM spec for process rewards (default: the task's checker)")
    add(
        "--aggregation",
        choices=("min", "last", "product", "mean"),
        default="min",
        help="how step scores combine into the process reward (default: min)",
    )
    add("--num-problems", type=int, default=64, help="training problems (default: 64)")
    add("--task-seed", type=int, default=0, help="seed of procedural tasks (default: 0)")
    add("--steps", type=int, default=50, help="optimizer steps (default: 50)")
    add("--num-generations", type=int, default=4, help="completions per problem (default: 4)")
    add(
        "--batch-size",
        type=int,
        default=4,
        help="completions per device per step; a multiple of --num-generations (default: 4)",
    )
    add("--max-completion-length", type=int, default=256, help="tokens per rollout (default: 256)")
    add(
        "--max-tool-calls",
        type=int,
        default=16,
        help="tool-calling turns per rollout (default: 16)",
    )
    add("--lr", type=float, default=1e-6, help="learning rate (default: 1e-6)")
    add(
        "--beta",
        type=float,
        default=0.0,
        help="KL coefficient; > 0 loads a reference model from disk (default: 0)",
    )
    add("--temperature", type=float, default=1.0, help="sampling temperature (default: 1.0)")
    add(
        "--chat-template",
        choices=("auto", "keep", "qwen2_5"),
        default="auto",
        help="tool-calling chat template: auto replaces ChatML with Qwen2.5's (default: auto)",
    )
    add("--save-steps", type=int, default=0, help="steps between checkpoints; 0 saves none")
    add("--device", default="cpu", help="cpu or cuda (default: cpu)")
    add("--seed", type=int, default=0, help="training seed (default: 0)")
    add("--output-dir", default="runs/grpo", help="folder of checkpoints and the final model")
    add("--task-kwargs", default="{}", help="task options as JSON, e.g. '{\"difficulty\": 1}'")


def _common_settings(args: argparse.Namespace) -> dict:
    return dict(
        output_dir=args.output_dir,
        use_cpu=args.device == "cpu",
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        learning_rate=args.lr,
        beta=args.beta,
        temperature=args.temperature,
        report_to="none",
        logging_steps=1,
        save_strategy="steps" if args.save_steps > 0 else "no",
        save_steps=max(args.save_steps, 1),
        seed=args.seed,
    )


def run(args: argparse.Namespace) -> int:
    """Train as configured by ``args``; saves the final model under ``--output-dir/final``."""
    from transformers import AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint

    from agents.trl_adapters import make_grpo_trainer, make_rloo_trainer, prepare_model
    from reasoning_gym.cli.train_ppo import parse_task_kwargs
    from reasoning_gym.cli.train_star import task_from_env_id
    from reasoning_gym.models import DEFAULT_MODEL

    if args.trainer == "rloo" and args.use_environment:
        raise ValueError(
            "--trainer rloo has no environment support in TRL 1.16; add --no-environment"
        )
    if args.batch_size % args.num_generations != 0:
        raise ValueError(
            f"--batch-size {args.batch_size} must be a multiple of --num-generations "
            f"{args.num_generations}, so every step holds whole groups"
        )
    task_name = task_from_env_id(args.env)
    task_kwargs = parse_task_kwargs(args.task_kwargs)
    model = prepare_model(args.model or DEFAULT_MODEL, args.output_dir)
    tokenizer = AutoTokenizer.from_pretrained(model)
    common = dict(
        train_dataset=None,
        num_problems=args.num_problems,
        seed=args.task_seed,
        reward_mode=args.reward_mode,
        prm=args.prm,
        aggregation=args.aggregation,
        task_kwargs=task_kwargs,
    )
    if args.trainer == "grpo":
        from trl import GRPOConfig

        config = GRPOConfig(
            max_tool_calling_iterations=args.max_tool_calls, **_common_settings(args)
        )
        trainer = make_grpo_trainer(
            model,
            tokenizer,
            task_name,
            config,
            use_environment=args.use_environment,
            chat_template=args.chat_template,
            **common,
        )
    else:
        from trl import RLOOConfig

        trainer = make_rloo_trainer(
            model, tokenizer, task_name, RLOOConfig(**_common_settings(args)), **common
        )

    last = get_last_checkpoint(args.output_dir) if Path(args.output_dir).is_dir() else None
    if last:
        print(f"resuming from {last}")
    trainer.train(resume_from_checkpoint=last)
    final = Path(args.output_dir) / "final"
    trainer.save_model(str(final))
    trainer.processing_class.save_pretrained(str(final))
    rewards = [row["reward"] for row in trainer.state.log_history if "reward" in row]
    if rewards:
        print(f"mean reward: first step {rewards[0]:.3f}, last step {rewards[-1]:.3f}")
    print(f"final model saved to {final}")
    return 0
