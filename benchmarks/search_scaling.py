"""Accuracy of search agents against the number of generated tokens they spend.

Agents: greedy, best-of-N (PRM ``min`` and ``last``), self-consistency (plain and
PRM-weighted votes), step-level beam search and MCTS, at budgets of 1, 2, 4, 8 and 16
samples or the equivalent (beam ``B x k ~= budget``, MCTS ``budget`` simulations of width
4). The x axis of the plot is the measured mean number of generated tokens.

Best-of-N and self-consistency select from one pool of ``max(budgets)`` solutions per
problem: budget N uses the first N, which are N i.i.d. samples. Their token counts are
those of the N solutions; their wall time is the pool's, scaled by N / max(budgets).
Beam search and MCTS run once per budget.

Policies:
- ``smollm2``: SmolLM2-135M through HFPolicy, wrapped in :class:`ReplayPolicy` so that
  agents repeating the same seeded calls (the same pool scored by two PRMs) generate once.
- ``simulated``: a model-free arithmetic policy that copies the gold step with
  probability ``--p-correct``. Otherwise it makes an arithmetic slip (a wrong result,
  which the step checker flags) or a plan error (a true equation with the wrong
  operator, which the checker accepts). It reads the gold steps, so it measures the
  search algorithms at a known per-step accuracy, not a model.

PRMs: ``oracle`` is the task's step checker. For arithmetic it checks the arithmetic and
that every operand is known (not which operation the question needs) and compares a
final answer with the gold answer. For GSM8K it checks the arithmetic of stated
equations only. ``noisy`` is the same checker with 20% of scores flipped and Gaussian
noise, a stand-in for an imperfect learned PRM. Correctness comes only from the
environment's verifier on the committed trajectory.

Run (the recorded results):
    .venv/bin/python -m benchmarks.search_scaling --policy simulated --problems 100
    .venv/bin/python -m benchmarks.search_scaling --policy smollm2 --tasks arithmetic \
        --num-operations 1 --max-operand 20 --few-shot 6 --max-steps 4 \
        --max-step-tokens 32 --dtype bfloat16 --problems 100 --threads 1
    .venv/bin/python -m benchmarks.search_scaling --policy smollm2 --tasks gsm8k \
        --prms oracle --few-shot 2 --max-steps 8 --max-step-tokens 48 --dtype bfloat16 \
        --problems 100 --threads 1 --time-limit-s 4200
    # then, for problems 22-99: --threads 2 --agents greedy,best_of_n,self_consistency
Rows are appended to ``results/<name>.jsonl``, and a rerun skips the rows already there.
The table compares all agents on the problems that every agent and budget finished.
Where the sampling agents finished more problems, extra rows (``compared="sampling"``)
report them on that larger set.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import random
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.base import SearchContext, problem_seed
from agents.search import make_search_agent
from agents.search.best_of_n import BestOfNAgent
from agents.search.self_consistency import SelfConsistencyAgent
from benchmarks._common import RESULTS_DIR, write_results
from reasoning_gym.env import ReasoningEnv
from reasoning_gym.policies.base import SamplingConfig, StepPolicy, StepProposal
from reasoning_gym.prm.base import ProcessRewardModel, StepQuery
from reasoning_gym.tasks.base import Problem, Task, make_task

logger = logging.getLogger(__name__)

_EQUATION_RE = re.compile(r"^(\d+) ([-+*/]) (\d+) = (\d+)$")
# A plan error swaps the operator for another one whose result stays a non-negative integer.
_SWAPS = {"+": ["-", "*"], "-": ["+"], "*": ["+"], "/": ["*", "+"]}


class SimulatedArithmeticPolicy(StepPolicy):
    """Model-free policy that corrupts the gold steps of the current problem at fixed rates.

    Call :meth:`set_problem` before each episode. With temperature 0 the proposals are a
    fixed function of the problem and the steps so far, so they stand in for greedy decoding.

    Args:
        tokenizer: The environment's tokenizer.
        p_correct: Probability that an on-track step is the gold step.
        p_slip: Probability of an arithmetic slip; the rest are plan errors.
    """

    name = "simulated"

    def __init__(self, tokenizer: Any, p_correct: float = 0.7, p_slip: float = 0.15):
        super().__init__(SamplingConfig(temperature=1.0, max_step_tokens=64))
        if not 0 <= p_correct <= 1 or not 0 <= p_slip <= 1 - p_correct:
            raise ValueError(f"p_correct={p_correct}, p_slip={p_slip} must be probabilities")
        self.tokenizer = tokenizer
        self.p_correct = p_correct
        self.p_slip = p_slip
        self.problem: Problem | None = None
        self.prompt_length = 0
        self._rng = random.Random(0)
        self._seed: int | None = None

    def reset(self) -> None:
        """Start a new episode: the next seeded call reseeds, so every agent sees the same
        samples on the same problem (common random numbers)."""
        self._seed = None

    def set_problem(self, problem: Problem, prompt_length: int) -> None:
        self.problem = problem
        self.prompt_length = prompt_length

    def propose(self, contexts, n=1, sampling=None):
        sampling = sampling or self.sampling
        if sampling.seed is not None and sampling.seed != self._seed:
            self._seed = sampling.seed
            self._rng = random.Random(sampling.seed)
        out = []
        for context in contexts:
            text = self.tokenizer.decode(np.asarray(context)[self.prompt_length :].tolist())
            previous = tuple(text.split("\n")[:-1])
            if sampling.greedy:
                rng = random.Random(f"{self.problem.id}|{previous}")
                steps = [self._step(previous, rng)] * n
            else:
                steps = [self._step(previous, self._rng) for _ in range(n)]
            group = []
            for step in steps:
                ids = np.asarray(self.tokenizer.encode(step), dtype=np.int64)
                group.append(StepProposal(ids, step, np.zeros(len(ids), dtype=np.float32)))
            out.append(group)
        return out

    def _step(self, previous: tuple[str, ...], rng: random.Random) -> str:
        gold = self.problem.gold_steps
        depth = len(previous)
        last = len(gold) - 1
        on_track = previous == gold[:depth]
        if depth >= last:
            if on_track:
                return gold[last]
            wrong = int(self.problem.answer) + rng.choice([-2, -1, 1, 2, 10])
            return f"The answer is \\boxed{{{wrong}}}."
        if not on_track:
            return gold[depth]
        draw = rng.random()
        if draw < self.p_correct:
            return gold[depth]
        match = _EQUATION_RE.match(gold[depth])
        if match is None:
            return gold[depth] + " + 1"
        a, op, b, c = int(match[1]), match[2], int(match[3]), int(match[4])
        if draw < self.p_correct + self.p_slip:
            return f"{a} {op} {b} = {c + rng.choice([-2, -1, 1, 2])}"
        for swap in _SWAPS[op]:
            value = {"+": a + b, "-": a - b, "*": a * b}.get(swap)
            if value is not None and value >= 0 and value != c:
                return f"{a} {swap} {b} = {value}"
        return f"{a} {op} {b} = {c + 1}"


class NoisyCheckerPRM(ProcessRewardModel):
    """The task's step checker with a fraction of scores flipped and Gaussian noise added.

    The noise of a step is a fixed function of the problem and the step texts, so repeated
    queries agree. For the arithmetic task the checker does not read the gold answer.
    """

    name = "noisy"

    def __init__(self, task: Task, flip: float = 0.2, noise: float = 0.1):
        super().__init__()
        self.task = task
        self.flip = flip
        self.noise = noise

    def _score_batch(self, queries: Sequence[StepQuery]) -> np.ndarray:
        scores = np.empty(len(queries))
        for i, query in enumerate(queries):
            value = self.task.check_step(query.problem, query.previous_steps, query.step)
            value = 0.5 if value is None else float(value)
            key = f"{query.problem.id}|{query.previous_steps}|{query.step}".encode()
            seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
            rng = np.random.default_rng(seed)
            if rng.random() < self.flip:
                value = 1.0 - value
            scores[i] = value + self.noise * rng.standard_normal()
        return np.clip(scores, 0.0, 1.0)


class ReplayPolicy(StepPolicy):
    """Wraps a policy and replays its proposals when an agent repeats a call sequence.

    A call's key chains the keys of the episode's earlier calls with this call's contexts,
    ``n`` and sampling settings. Since the wrapped policy is seeded per episode, a call
    with the same key would return the same proposals, so replaying it changes no result.
    Agents that make the same calls (the same sampler scored by two PRMs, or a beam search
    until two PRMs disagree) then generate each proposal once. Token counts still include
    replayed proposals, while wall time does not include their generation.
    """

    def __init__(self, inner: StepPolicy):
        super().__init__(inner.sampling)
        self.inner = inner
        self.name = inner.name
        self._cache: dict[bytes, list[list[StepProposal]]] = {}
        self._chain = b""
        self.hits = 0
        self.misses = 0

    def reset(self) -> None:
        self._chain = b""
        self.inner.reset()

    def clear(self) -> None:
        """Drop the stored proposals (call between problems to bound memory)."""
        self._cache.clear()

    def propose(self, contexts, n=1, sampling=None):
        sampling = sampling or self.sampling
        digest = hashlib.blake2b(self._chain, digest_size=16)
        digest.update(repr((n, sampling)).encode())
        for context in contexts:
            ids = np.ascontiguousarray(context, dtype=np.int64)
            digest.update(len(ids).to_bytes(8, "little"))
            digest.update(ids.tobytes())
        key = digest.digest()
        self._chain = key
        if key in self._cache:
            self.hits += 1
            return self._cache[key]
        self.misses += 1
        proposals = self.inner.propose(contexts, n=n, sampling=sampling)
        self._cache[key] = proposals
        return proposals


#: Agents whose samples do not depend on the PRM or the budget: one pool of
#: ``max(budgets)`` solutions per problem serves every budget, each budget N using the
#: first N solutions (i.i.d. samples, so a prefix is an N-sample draw).
POOLED_FAMILIES = {
    "best_of_n[min]": lambda policy: BestOfNAgent(policy, score="min"),
    "best_of_n[last]": lambda policy: BestOfNAgent(policy, score="last"),
    "self_consistency": lambda policy: SelfConsistencyAgent(policy),
    "self_consistency[prm]": lambda policy: SelfConsistencyAgent(policy, weighting="prm"),
}


def tree_configs(budget: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(family, agent name, options) of the agents that run once per budget."""
    if budget == 1:
        return [("greedy", "greedy", {})]
    width = {2: 1, 4: 2, 8: 2, 16: 4}.get(budget, max(1, int(budget**0.5)))
    return [
        ("beam", "beam", {"beam_width": width, "expansion": budget // width}),
        ("mcts", "mcts", {"simulations": budget, "expansion": 4}),
    ]


def is_selected(family: str, name: str, requested: set[str]) -> bool:
    return family in requested or name in requested


def build_task(name: str, args: argparse.Namespace) -> Task:
    if name == "arithmetic":
        return make_task(
            "arithmetic", num_operations=args.num_operations, max_operand=args.max_operand
        )
    return make_task("gsm8k", split="test", limit=args.offset + args.problems)


def build_prm(name: str, task: Task) -> ProcessRewardModel:
    if name == "oracle":
        from reasoning_gym.prm.oracle import OraclePRM

        return OraclePRM(task)
    return NoisyCheckerPRM(task)


def build_policy(args: argparse.Namespace, env: ReasoningEnv):
    """Return (policy, sampling, prepare) where prepare(problem) runs before each episode."""
    if args.policy == "simulated":
        policy = SimulatedArithmeticPolicy(env.tokenizer, args.p_correct, args.p_slip)
        sampling = SamplingConfig(temperature=1.0, max_step_tokens=64)

        def prepare(problem: Problem) -> None:
            policy.set_problem(problem, len(env.prompt_ids(problem)))

        return policy, sampling, prepare

    from reasoning_gym.models import load_model
    from reasoning_gym.policies.hf import HFPolicy

    model = load_model("smollm2-135m", dtype=args.dtype)
    sampling = SamplingConfig(
        temperature=args.temperature, top_p=0.95, max_step_tokens=args.max_step_tokens
    )
    policy = HFPolicy(model, env.tokenizer, sampling=sampling)
    return ReplayPolicy(policy), sampling, lambda problem: None


def run_pooled(
    args, env: ReasoningEnv, policy: StepPolicy, sampling: SamplingConfig, index: int
) -> list[dict[str, Any]]:
    """Sample one pool of ``max(budgets)`` solutions; select from its prefixes at every budget."""
    env.reset(options={"index": index})
    policy.reset()
    seed = problem_seed(args.seed, env.problem.id)
    sampling = dataclasses.replace(sampling, seed=seed)
    start = time.perf_counter()
    context = SearchContext(env, policy, env.prm, sampling)
    solutions = context.sample_solutions(max(args.budgets), args.max_steps, score=True)
    pool_wall = time.perf_counter() - start

    selectors = {
        family: factory(policy)
        for family, factory in POOLED_FAMILIES.items()
        if is_selected(family, family.split("[")[0], args.agents)
    }

    rows = []
    for budget in args.budgets:
        subset = solutions[:budget]
        paths = [s.path() for s in subset]
        compute = {
            "generated_tokens": sum(c.num_tokens for path in paths for c in path),
            "policy_calls": max(len(path) for path in paths),
            "prm_calls": max(len(path) for path in paths),
            "prm_items": sum(len(path) for path in paths),
            "wall_time_s": pool_wall * budget / max(args.budgets),
        }
        for family, selector in selectors.items():
            chosen, score, _ = selector.select(subset)
            record = context.finish(family, subset[chosen], score, {})
            rows.append(
                {
                    "agent": family,
                    "budget": budget,
                    "correct": record.correct,
                    "answer": record.answer,
                    **compute,
                }
            )
    return rows


def run_tree(args, env, policy, sampling, index, family, name, options) -> dict[str, Any]:
    if name == "greedy":
        agent = make_search_agent(name, policy, max_step_tokens=sampling.max_step_tokens)
    else:
        agent = make_search_agent(name, policy, sampling=sampling, seed=args.seed, **options)
    record = agent.run(env, {"index": index})
    return {
        "agent": family,
        "correct": record.correct,
        "answer": record.answer,
        **record.compute.to_dict(),
    }


def row_key(row: dict[str, Any]) -> tuple:
    return (row["policy"], row["task"], row["prm"], row["agent"], row["budget"], row["problem"])


def save_row(out_path: Path, done: set, row: dict[str, Any]) -> None:
    """Append ``row`` to the results file and mark it done."""
    with out_path.open("a") as handle:
        handle.write(json.dumps(row) + "\n")
    done.add(row_key(row))


def run_task(args, task_name: str, out_path: Path, done: set, deadline: float) -> bool:
    """Run every agent on every problem of ``task_name``, problem by problem.

    Problems are the outer loop, so a run stopped by the time limit has results of every
    agent on the same problems.
    """
    from tqdm import tqdm

    from reasoning_gym.tokenizers import load_tokenizer

    task = build_task(task_name, args)
    tokenizer = None if args.policy == "simulated" else load_tokenizer("smollm2-135m")
    prm_names = args.prms.split(",")
    envs = {
        prm: ReasoningEnv(
            task=task,
            tokenizer=tokenizer,
            prm=build_prm(prm, task),
            max_steps=args.max_steps,
            few_shot=args.few_shot,
        )
        for prm in prm_names
    }
    first_env = envs[prm_names[0]]
    policy, sampling, prepare = build_policy(args, first_env)
    budgets = args.budgets
    indices = range(args.offset, args.offset + args.problems)
    for index in tqdm(indices, desc=f"{args.policy}/{task_name}", unit="problem"):
        problem = task.problem(index)
        prepare(problem)
        for prm_name, env in envs.items():
            base = {"policy": args.policy, "task": task_name, "prm": prm_name, "problem": index}

            jobs: list[tuple[str, str, dict[str, Any], int]] = [
                (family, name, options, budget)
                for budget in budgets
                for family, name, options in tree_configs(budget)
                if is_selected(family, name, args.agents)
            ]
            pooled_keys = [
                (args.policy, task_name, prm_name, family, budget, index)
                for family in POOLED_FAMILIES
                if is_selected(family, family.split("[")[0], args.agents)
                for budget in budgets
            ]
            if pooled_keys and not all(key in done for key in pooled_keys):
                if time.monotonic() > deadline:
                    return False
                env.prm.clear_cache()
                for row in run_pooled(args, env, policy, sampling, index):
                    save_row(out_path, done, {**base, **row})
            for family, name, options, budget in jobs:
                if (args.policy, task_name, prm_name, family, budget, index) in done:
                    continue
                if time.monotonic() > deadline:
                    return False
                env.prm.clear_cache()
                row = run_tree(args, env, policy, sampling, index, family, name, options)
                save_row(out_path, done, {**base, **row, "budget": budget})
        if isinstance(policy, ReplayPolicy):
            policy.clear()
    return True


def complete_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep, per (policy, task, PRM), the problems that every agent and budget finished."""
    problems: dict[tuple, dict[tuple, set[int]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        setting = (row["policy"], row["task"], row["prm"])
        problems[setting][(row["agent"], row["budget"])].add(row["problem"])
    complete = {
        setting: set.intersection(*by_agent.values()) for setting, by_agent in problems.items()
    }
    return [r for r in rows if r["problem"] in complete[(r["policy"], r["task"], r["prm"])]]


#: Agents that need no tree search; a run may cover more problems with these alone.
SAMPLING_FAMILIES = ("greedy", *POOLED_FAMILIES)


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return one table row per (setting, agent, budget).

    Rows with ``compared="all"`` cover the problems that every agent finished. Where the
    sampling agents (greedy, best-of-N, votes) finished more problems than that, rows with
    ``compared="sampling"`` report them on their own larger problem set.
    """
    table = _summary_rows(complete_rows(rows), "all")
    counts = {(r["policy"], r["task"], r["prm"]): r["problems"] for r in table}
    sampling = _summary_rows(
        complete_rows([r for r in rows if r["agent"] in SAMPLING_FAMILIES]), "sampling"
    )
    table += [
        r for r in sampling if r["problems"] > counts.get((r["policy"], r["task"], r["prm"]), 0)
    ]
    return table


def _summary_rows(rows: list[dict[str, Any]], compared: str) -> list[dict[str, Any]]:
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["policy"], row["task"], row["prm"], row["agent"], row["budget"])].append(row)
    table = []
    for (policy, task, prm, agent, budget), items in sorted(groups.items()):
        table.append(
            {
                "policy": policy,
                "task": task,
                "prm": prm,
                "compared": compared,
                "agent": agent,
                "budget": budget,
                "problems": len(items),
                "accuracy": float(np.mean([r["correct"] for r in items])),
                "stderr": float(np.std([r["correct"] for r in items]) / np.sqrt(len(items))),
                "tokens": float(np.mean([r["generated_tokens"] for r in items])),
                "policy_calls": float(np.mean([r["policy_calls"] for r in items])),
                "prm_calls": float(np.mean([r["prm_calls"] for r in items])),
                "prm_items": float(np.mean([r["prm_items"] for r in items])),
                "wall_s": float(np.mean([r["wall_time_s"] for r in items])),
            }
        )
    greedy = {(r["policy"], r["task"], r["prm"]): r for r in table if r["agent"] == "greedy"}
    for row in table:
        base = greedy.get((row["policy"], row["task"], row["prm"]))
        row["tokens_vs_greedy"] = (
            row["tokens"] / base["tokens"] if base and base["tokens"] else None
        )
    return table


def plot(table: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = sorted({(r["policy"], r["task"], r["prm"], r["compared"]) for r in table})
    colors = {agent: f"C{i}" for i, agent in enumerate(sorted({r["agent"] for r in table}))}
    fig, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4.2), squeeze=False)
    for ax, setting in zip(axes[0], settings, strict=True):
        rows = [r for r in table if (r["policy"], r["task"], r["prm"], r["compared"]) == setting]
        for agent in sorted({r["agent"] for r in rows}):
            points = sorted((r["tokens"], r["accuracy"]) for r in rows if r["agent"] == agent)
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=agent, color=colors[agent])
        ax.set_xscale("log")
        ax.set_xlabel("generated tokens per problem (mean)")
        ax.set_ylabel("accuracy")
        problems = max(r["problems"] for r in rows)
        agents = "" if setting[3] == "all" else ", sampling agents"
        ax.set_title(
            f"{setting[0]} / {setting[1]} / PRM {setting[2]} ({problems} problems{agents})",
            fontsize=10,
        )
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy", choices=("simulated", "smollm2"), default="simulated")
    parser.add_argument(
        "--tasks", default="arithmetic", help="comma-separated tasks: arithmetic, gsm8k"
    )
    parser.add_argument("--prms", default="oracle,noisy", help="comma-separated: oracle, noisy")
    parser.add_argument("--problems", type=int, default=100, help="problems per task")
    parser.add_argument("--offset", type=int, default=0, help="index of the first problem")
    parser.add_argument(
        "--few-shot", type=int, default=0, help="worked examples in each prompt (SmolLM2 runs)"
    )
    parser.add_argument(
        "--budgets", default="1,2,4,8,16", help="comma-separated budgets in samples per problem"
    )
    parser.add_argument(
        "--agents",
        default="greedy,best_of_n,self_consistency,beam,mcts",
        help="comma list of agent names or families such as 'best_of_n[min]'",
    )
    parser.add_argument("--num-operations", type=int, default=3, help="arithmetic difficulty")
    parser.add_argument("--max-operand", type=int, default=20, help="arithmetic difficulty")
    parser.add_argument("--max-steps", type=int, default=6, help="steps per episode")
    parser.add_argument("--max-step-tokens", type=int, default=40, help="tokens per step")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature")
    parser.add_argument("--dtype", default="float32", help="SmolLM2 weights dtype")
    parser.add_argument(
        "--p-correct", type=float, default=0.7, help="simulated policy: P(gold step)"
    )
    parser.add_argument(
        "--p-slip", type=float, default=0.15, help="simulated policy: P(arithmetic slip)"
    )
    parser.add_argument("--seed", type=int, default=0, help="base sampling seed")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--summarize-only",
        action="store_true",
        help="rewrite the table and plot from the results file without running agents",
    )
    parser.add_argument(
        "--name", default=None, help="results base name (default search_scaling_<policy>)"
    )
    parser.add_argument(
        "--time-limit-s",
        type=float,
        default=1500.0,
        help="seconds after which no new agent run starts (the running one finishes)",
    )
    args = parser.parse_args(argv)
    args.budgets = [int(b) for b in args.budgets.split(",")]
    args.agents = set(args.agents.split(","))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.ERROR)
    args = parse_args(argv)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    name = args.name or f"search_scaling_{args.policy}"
    out_path = RESULTS_DIR / f"{name}.jsonl"
    rows = []
    if out_path.exists():
        rows = [json.loads(line) for line in out_path.read_text().splitlines() if line.strip()]
    done = {row_key(r) for r in rows}

    deadline = time.monotonic() + args.time_limit_s
    start = time.perf_counter()
    finished = True
    for task_name in [] if args.summarize_only else args.tasks.split(","):
        finished &= run_task(args, task_name, out_path, done, deadline)

    rows = [json.loads(line) for line in out_path.read_text().splitlines() if line.strip()]
    table = summarize(rows)
    plot(table, RESULTS_DIR / f"{name}.png")
    notes = (
        f"Seed {args.seed}; arithmetic num_operations={args.num_operations}, "
        f"max_operand={args.max_operand}; max_steps={args.max_steps}. "
        f"Run {'completed' if finished else 'stopped at the time limit'} after "
        f"{time.perf_counter() - start:.0f} s. tokens_vs_greedy is the token budget as a "
        "ratio to greedy decoding in the same run."
    )
    write_results(
        name, table, meta={"args": {k: str(v) for k, v in vars(args).items()}}, notes=notes
    )
    for row in table:
        print(
            f"{row['prm']:>6} {row['agent']:<22} N={row['budget']:<3} acc={row['accuracy']:.3f} "
            f"tokens={row['tokens']:.0f} ({row['problems']} problems)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
