"""``reasoning-gym eval``: run an agent on problems of an environment and report accuracy.

Problems are chosen by index (``offset``, ``offset + 1``, ...), so two runs with the same
arguments see the same problems. Every finished episode is appended to
``OUT/episodes.jsonl`` and flushed, so Ctrl-C loses only the running episode and
``--resume`` continues where the file ends. ``OUT/summary.json`` contains the aggregate.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

EPISODES_FILE = "episodes.jsonl"
SUMMARY_FILE = "summary.json"
RUN_FILE = "run.json"
#: Settings that change the episodes; --resume requires them to match the earlier run.
RUN_SETTINGS = (
    "env",
    "agent",
    "model",
    "seed",
    "prm",
    "data",
    "question_key",
    "answer_key",
    "few_shot",
    "max_steps",
    "max_step_tokens",
    "temperature",
    "top_p",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``reasoning-gym eval``."""
    from reasoning_gym.models import DEFAULT_MODEL

    parser.add_argument("--env", default="Reasoning-v0", help="environment id or task name")
    parser.add_argument(
        "--model",
        default=None,
        help=f"model short name, local folder or hub id (default {DEFAULT_MODEL} for model agents)",
    )
    parser.add_argument("--agent", default="greedy", help="agent name; see `reasoning-gym list`")
    parser.add_argument("--limit", type=int, default=20, help="number of problems to run")
    parser.add_argument("--offset", type=int, default=0, help="index of the first problem")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of sampling and of the agent's randomness"
    )
    parser.add_argument("--data", default=None, help="data file of a dataset task (JSONL)")
    parser.add_argument("--question-key", default=None, help="jsonl task: field with the question")
    parser.add_argument("--answer-key", default=None, help="jsonl task: field with the answer")
    parser.add_argument(
        "--out", default=None, help="output folder (default eval_runs/ENV-AGENT-MODEL-sSEED)"
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/episodes.jsonl")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUT/episodes.jsonl"
    )
    parser.add_argument("--dtype", default="auto", help="model dtype: auto, bf16, fp32, fp16")
    parser.add_argument("--device", default="cpu", help="torch device, for example cpu or cuda")
    parser.add_argument("--max-steps", type=int, default=16, help="steps before truncation")
    parser.add_argument(
        "--max-step-tokens", type=int, default=128, help="maximum tokens generated per step"
    )
    parser.add_argument(
        "--temperature", type=float, default=0.7, help="sampling temperature of sampling agents"
    )
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus-sampling mass")
    parser.add_argument(
        "--few-shot",
        type=int,
        default=0,
        help="worked examples shown before each question (procedural tasks, gsm8k)",
    )
    parser.add_argument(
        "--prm",
        default="auto",
        help="process reward model: auto, none, oracle, learned:PATH, judge:MODEL",
    )
    parser.add_argument(
        "--no-pull",
        action="store_true",
        help="fail instead of downloading a short-named model that is not cached",
    )
    from reasoning_gym.cli.search_agents import add_search_arguments
    from reasoning_gym.distributed import add_backend_arguments

    add_search_arguments(parser)
    add_backend_arguments(parser)


def _ensure_model(model: str, allow_pull: bool) -> None:
    """Pull a short-named model that is missing from the cache, with a message."""
    from reasoning_gym.models import MODELS, is_pulled, models_dir, pull

    if model not in MODELS or is_pulled(model):
        return
    if not allow_pull:
        return  # resolve_model_path raises ModelNotFoundError with the pull command
    print(
        f"model {model!r} is not in the cache {models_dir()}; pulling it now "
        f"(`reasoning-gym models pull {model}` does the same)",
        file=sys.stderr,
    )
    pull(model)


def _default_out(env_id: str, agent: str, model: str | None, seed: int) -> Path:
    name = f"{env_id}-{agent}-{Path(model).name if model else 'nomodel'}-s{seed}"
    return Path("eval_runs") / name.replace(":", "_").replace("/", "_")


def _validate(args: argparse.Namespace) -> None:
    if args.limit < 1:
        raise ValueError(f"--limit {args.limit} must be at least 1")
    if args.offset < 0:
        raise ValueError(f"--offset {args.offset} must be non-negative")
    if args.max_steps < 1:
        raise ValueError(f"--max-steps {args.max_steps} must be at least 1")
    if args.max_step_tokens < 1:
        raise ValueError(f"--max-step-tokens {args.max_step_tokens} must be at least 1")
    if args.few_shot < 0:
        raise ValueError(f"--few-shot {args.few_shot} must be 0 or more")
    if args.prm == "mc" or args.prm.startswith("mc:"):
        raise ValueError(
            f"--prm {args.prm} needs a rollout policy, which eval does not build; use --prm "
            "oracle, learned:PATH or judge here, or make_prm('mc', task=..., policy=...) "
            "from Python"
        )
    if args.resume and args.overwrite:
        raise ValueError("--resume and --overwrite contradict each other; pass one of them")


def _check_settings(out_dir: Path, settings: dict[str, Any]) -> None:
    """Compare ``settings`` with the ``run.json`` of the run that ``--resume`` continues.

    Raises:
        ValueError: The earlier run in ``out_dir`` used other settings.
    """
    path = out_dir / RUN_FILE
    if path.exists():
        earlier = json.loads(path.read_text())
        changed = {
            key: (earlier.get(key), value)
            for key, value in settings.items()
            if earlier.get(key) != value
        }
        if changed:
            listed = ", ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise ValueError(
                f"--resume: {out_dir} contains a run with other settings ({listed}); "
                "rerun with the earlier settings, or pass another --out or --overwrite"
            )


def _load_done(path: Path, resume: bool, overwrite: bool) -> list[Any]:
    """Return the episodes already in ``path`` (with --resume) and prepare the file."""
    from reasoning_gym.episodes import JsonlWriter, read_episodes

    if not path.exists():
        return []
    if overwrite:
        path.unlink()
        return []
    if not resume:
        raise FileExistsError(
            f"{path} already exists; pass --resume to continue it, --overwrite to replace "
            "it, or another --out folder"
        )
    done = read_episodes(path)
    # Rewrite the file so that a line cut off by Ctrl-C does not precede new lines.
    staged = path.with_suffix(".jsonl.tmp")
    with JsonlWriter(staged, append=False) as writer:
        for record in done:
            writer.write(record)
    staged.replace(path)
    return done


def _print_table(summary: dict[str, Any]) -> None:
    rows = [
        ("episodes", f"{summary['episodes']}"),
        ("accuracy", f"{summary.get('accuracy', 0.0):.3f}"),
        ("mean return", f"{summary.get('mean_return', 0.0):.3f}"),
        ("mean steps", f"{summary.get('mean_steps', 0.0):.2f}"),
        ("generated tokens", f"{summary.get('generated_tokens', 0)}"),
        ("tokens/s", f"{summary.get('tokens_per_s', 0.0):.1f}"),
        ("wall time (s)", f"{summary.get('wall_time_s', 0.0):.1f}"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


#: Agents that run as one policy per episode, which the Ray backend can distribute.
RAY_AGENTS = ("greedy", "sample", "random", "oracle")


def _ray_runner(
    args: argparse.Namespace,
    env_id: str,
    env_kwargs: dict[str, Any],
    model: str | None,
    indices: list[int],
) -> Any:
    """Run every episode of ``indices`` on Ray now; return a runner that reads the results.

    Each Ray actor builds its own environment and policy from picklable specs, so the
    records equal the local backend's for the same seed.
    """
    from reasoning_gym.distributed import backend_kwargs, collect_rollouts
    from reasoning_gym.episodes import EpisodeRecord
    from reasoning_gym.policies.base import SamplingConfig

    if args.agent not in RAY_AGENTS:
        raise ValueError(
            f"--backend ray runs the agents {', '.join(RAY_AGENTS)}, not {args.agent!r}; "
            "run search agents with --backend local"
        )
    env_spec = {**env_kwargs, "env_id": env_id, "tokenizer": model or "byte"}
    if model is None:
        policy_spec: dict[str, Any] = {"name": args.agent}
    else:
        sampling = SamplingConfig(
            temperature=0.0 if args.agent == "greedy" else args.temperature,
            top_p=args.top_p,
            max_step_tokens=args.max_step_tokens,
            seed=args.seed,
        )
        policy_spec = {"name": f"hf:{model}", "sampling": sampling, "dtype": args.dtype}
    start = time.perf_counter()
    rows = collect_rollouts(
        env_spec, policy_spec, indices, seed=args.seed, progress=True, **backend_kwargs(args)
    )
    seconds_per_episode = (time.perf_counter() - start) / max(len(rows), 1)
    by_index = {row["problem_index"]: row for row in rows}

    def runner(env: Any, index: int) -> EpisodeRecord:
        row = by_index[index]
        return EpisodeRecord(
            index=index,
            problem_id=row["problem_id"],
            question=env.unwrapped.task.problem(index).question,
            steps=row["steps"],
            step_rewards=row["rewards"],
            prm_scores=row["prm_scores"],
            answer=row["answer"],
            gold=row["gold_answer"],
            correct=row["correct"],
            episode_return=row["return"],
            num_steps=row["num_steps"],
            generated_tokens=sum(len(ids) for ids in row["step_ids"]),
            wall_time_s=seconds_per_episode,
            terminated=row["terminated"],
            truncated=row["truncated"],
        )

    return runner


def run(args: argparse.Namespace) -> int:
    """Run the evaluation described by ``args``; returns the exit status."""
    import gymnasium as gym
    from tqdm.auto import tqdm

    import reasoning_gym  # noqa: F401  (registers the environment ids)
    from reasoning_gym.cli.agents_registry import AGENTS, AgentContext
    from reasoning_gym.episodes import JsonlWriter, summarize
    from reasoning_gym.errors import UnknownNameError
    from reasoning_gym.models import DEFAULT_MODEL
    from reasoning_gym.registration import resolve_env_id
    from reasoning_gym.tokenizers import load_tokenizer

    _validate(args)
    env_id = resolve_env_id(args.env)
    if args.agent not in AGENTS:
        raise UnknownNameError("agent", args.agent, AGENTS)
    spec = AGENTS[args.agent]
    from reasoning_gym.cli.search_agents import search_options

    typed_options = search_options(args, args.agent)

    model = args.model or (DEFAULT_MODEL if spec.needs_model else None)
    if model is not None:
        _ensure_model(model, allow_pull=not args.no_pull)
    tokenizer = load_tokenizer(model) if model is not None else load_tokenizer("byte")

    env_kwargs: dict[str, Any] = {
        "tokenizer": tokenizer,
        "prm": None if args.prm == "none" else args.prm,
        "max_steps": args.max_steps,
        "max_step_tokens": args.max_step_tokens,
        "few_shot": args.few_shot,
    }
    task_kwargs: dict[str, Any] = {}
    if args.data is not None:
        # The dataset tasks (gsm8k, jsonl) take their data file as ``path``.
        task_kwargs["path"] = str(args.data)
    for key in ("question_key", "answer_key"):
        if getattr(args, key) is not None:
            task_kwargs[key] = getattr(args, key)
    if task_kwargs:
        env_kwargs["task_kwargs"] = task_kwargs
    env = gym.make(env_id, **env_kwargs)

    out_dir = Path(args.out) if args.out else _default_out(env_id, args.agent, model, args.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    episodes_path = out_dir / EPISODES_FILE
    settings = {key: getattr(args, key) for key in RUN_SETTINGS}
    settings.update(env=env_id, model=model, data=None if args.data is None else str(args.data))
    settings.update(typed_options)
    if args.resume and episodes_path.exists():
        _check_settings(out_dir, settings)
    records = _load_done(episodes_path, args.resume, args.overwrite)
    (out_dir / RUN_FILE).write_text(json.dumps(settings, indent=2) + "\n")
    done_indices = {record.index for record in records}
    indices = [args.offset + i for i in range(args.limit)]
    todo = [index for index in indices if index not in done_indices]
    records = [record for record in records if record.index in set(indices)]
    if records:
        print(f"resuming: {len(records)} of {len(indices)} episodes already in {episodes_path}")

    context = AgentContext(
        env=env,
        model=model,
        tokenizer=tokenizer,
        seed=args.seed,
        dtype=args.dtype,
        device=args.device,
        temperature=args.temperature,
        top_p=args.top_p,
        max_step_tokens=args.max_step_tokens,
        search_options=typed_options,
    )
    if args.backend == "ray":
        runner = _ray_runner(args, env_id, env_kwargs, model, todo)
    else:
        runner = spec.factory(context)

    interrupted = False
    with JsonlWriter(episodes_path) as writer:
        progress = tqdm(todo, desc=f"eval {args.agent}", unit="episode")
        try:
            for index in progress:
                record = runner(env, index)
                writer.write(record)
                records.append(record)
                correct = sum(r.correct for r in records)
                progress.set_postfix(acc=f"{correct / len(records):.3f}")
        except KeyboardInterrupt:
            interrupted = True
        finally:
            progress.close()

    summary = summarize(records)
    summary.update(
        env=env_id,
        agent=args.agent,
        model=model,
        seed=args.seed,
        offset=args.offset,
        limit=args.limit,
        complete=not interrupted and len(records) == len(indices),
        agent_options=typed_options,
    )
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    _print_table(summary)
    print(f"episodes: {episodes_path}\nsummary: {out_dir / SUMMARY_FILE}")
    if interrupted:
        print(
            f"interrupted after {len(records)} episodes; rerun with --resume to continue",
            file=sys.stderr,
        )
        return 130
    return 0
