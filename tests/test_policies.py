"""Tests of the step policies: HFPolicy decoding, KV-cache reuse, baselines and the factory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from reasoning_gym.errors import ModelNotFoundError
from reasoning_gym.policies import POLICIES, make_policy
from reasoning_gym.policies.base import SamplingConfig
from reasoning_gym.policies.baselines import OraclePolicy, RandomPolicy
from reasoning_gym.policies.hf import HFPolicy, _has_complete_boxed
from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

QUESTION = "Tom has 12 apples. He buys 3 bags with 7 apples each. How many apples now?\n"


@pytest.fixture(scope="module")
def tokenizer():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return tiny_causal_lm(len(tokenizer), seed=3)


def bias_logits(model, token_ids: list[int], amount: float):
    """Add ``amount`` to the logits of ``token_ids``; returns the hook handle to remove."""
    bias = torch.zeros(model.config.vocab_size)
    bias[token_ids] = amount
    return model.lm_head.register_forward_hook(lambda module, inputs, output: output + bias)


def encode(tokenizer, text: str) -> np.ndarray:
    return np.asarray(tokenizer.encode(text), dtype=np.int64)


def roll_out(policy: HFPolicy, tokenizer, steps: int) -> list[list[int]]:
    """Greedy steps, each appended to the context with a newline, as the env does."""
    context = encode(tokenizer, QUESTION)
    outputs = []
    for _ in range(steps):
        proposal = policy.propose([context])[0][0]
        outputs.append(proposal.token_ids.tolist())
        context = np.concatenate([context, proposal.token_ids, encode(tokenizer, "\n")])
    return outputs


def test_greedy_step_matches_generate(model, tokenizer):
    # "@" never appears in the greedy rollout, so no separator stops the step early.
    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=10), separator="@")
    context = encode(tokenizer, QUESTION)
    proposal = policy.propose([context])[0][0]

    with torch.no_grad():
        generated = model.generate(
            torch.as_tensor(context)[None],
            attention_mask=torch.ones(1, len(context), dtype=torch.long),
            max_new_tokens=10,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )[0, len(context) :].tolist()
    assert "@" not in tokenizer.decode(generated)
    assert proposal.token_ids.tolist() == generated
    assert proposal.text == tokenizer.decode(generated)


def test_cache_reuse_matches_full_encoding(model, tokenizer):
    with_cache = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=6), cache_reuse=True)
    without = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=6), cache_reuse=False)

    cached_steps = roll_out(with_cache, tokenizer, steps=6)
    full_steps = roll_out(without, tokenizer, steps=6)

    assert cached_steps == full_steps
    assert with_cache.reused_tokens > 0
    assert with_cache.prefill_tokens < without.prefill_tokens
    assert without.reused_tokens == 0


def test_cache_reuse_after_branching_back(model, tokenizer):
    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=5))
    reference = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=5), cache_reuse=False)
    long_context = encode(tokenizer, QUESTION + "3 * 7 = 21\n12 + 21 = 33\n")
    short_context = encode(tokenizer, QUESTION + "3 * 7 = 21\n")

    policy.propose([long_context])
    # A search that returns to an earlier state crops the cache to the shorter context.
    after_branch = policy.propose([short_context])[0][0]
    expected = reference.propose([short_context])[0][0]
    assert after_branch.token_ids.tolist() == expected.token_ids.tolist()

    # The same context twice still feeds at least one token.
    again = policy.propose([short_context])[0][0]
    assert again.token_ids.tolist() == expected.token_ids.tolist()


def test_reset_drops_cache(model, tokenizer):
    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=3))
    context = encode(tokenizer, QUESTION)
    policy.propose([context])
    policy.reset()
    before = policy.reused_tokens
    policy.propose([context])
    assert policy.reused_tokens == before


def test_weight_update_drops_cache(tokenizer):
    model = tiny_causal_lm(len(tokenizer), seed=4)
    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=4))
    context = encode(tokenizer, QUESTION)
    policy.propose([context])
    with torch.no_grad():
        model.model.embed_tokens.weight.mul_(3.0)  # an in-place update, like optimizer.step
    after_update = policy.propose([context])[0][0]
    fresh = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=4), cache_reuse=False)
    expected = fresh.propose([context])[0][0]
    assert policy.reused_tokens == 0
    np.testing.assert_allclose(after_update.logprobs, expected.logprobs, atol=1e-4)


def test_batched_contexts_match_single(model, tokenizer):
    contexts = [encode(tokenizer, QUESTION), encode(tokenizer, "3 * 7 = 21\n")]
    sampling = SamplingConfig(max_step_tokens=6)
    batched = HFPolicy(model, tokenizer, sampling).propose(contexts)
    for context, group in zip(contexts, batched, strict=True):
        single = HFPolicy(model, tokenizer, sampling, cache_reuse=False).propose([context])[0][0]
        assert group[0].token_ids.tolist() == single.token_ids.tolist()
        np.testing.assert_allclose(group[0].logprobs, single.logprobs, atol=1e-4)


def test_shared_prefix_batch_matches_single(model, tokenizer):
    prefix = QUESTION + "3 * 7 = 21\n"
    suffixes = ["", "12 + 21 = 33\n", "12 +"]
    contexts = [encode(tokenizer, prefix + suffix) for suffix in suffixes]
    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=6))
    batched = policy.propose(contexts, n=2)
    assert policy.reused_tokens == 0
    assert policy.prefill_tokens < sum(len(c) for c in contexts)

    for context, group in zip(contexts, batched, strict=True):
        single = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=6), cache_reuse=False)
        expected = single.propose([context])[0][0]
        for proposal in group:
            assert proposal.token_ids.tolist() == expected.token_ids.tolist()
            np.testing.assert_allclose(proposal.logprobs, expected.logprobs, atol=1e-4)

    # The next call with a longer shared prefix starts from the kept cache.
    longer = [np.concatenate([c, encode(tokenizer, "7\n")]) for c in contexts[1:]]
    again = policy.propose(longer)
    assert policy.reused_tokens > 0
    for context, group in zip(longer, again, strict=True):
        single = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=6), cache_reuse=False)
        expected = single.propose([context])[0][0]
        assert group[0].token_ids.tolist() == expected.token_ids.tolist()


def test_separator_ends_step(model, tokenizer):
    newline = tokenizer.encode("\n")
    handle = bias_logits(model, newline, 4.0)
    try:
        policy = HFPolicy(model, tokenizer, SamplingConfig(temperature=1.0, seed=0))
        proposals = policy.propose([encode(tokenizer, QUESTION)], n=8)[0]
    finally:
        handle.remove()
    for proposal in proposals:
        assert "\n" not in proposal.text
        assert tokenizer.decode(proposal.token_ids.tolist()) == proposal.text
        assert len(proposal.text) > 0  # block_empty_steps forbids a leading newline
        assert len(proposal.logprobs) == len(proposal.token_ids)
    assert any(len(p.token_ids) < 128 for p in proposals)


def test_separator_inside_token_reencodes(model, tokenizer):
    # " =" is one token, so the separator "=" shares a token with the space before it.
    space_equals = tokenizer.encode(" =")
    assert len(space_equals) == 1
    handle = bias_logits(model, space_equals, 6.0)
    try:
        policy = HFPolicy(model, tokenizer, SamplingConfig(temperature=1.0, seed=1), separator="=")
        context = encode(tokenizer, QUESTION)
        proposals = policy.propose([context], n=6)[0]
        for proposal in proposals:
            assert "=" not in proposal.text
            assert tokenizer.decode(proposal.token_ids.tolist()) == proposal.text
            expected = policy.token_logprobs(context, proposal.token_ids)
            np.testing.assert_allclose(proposal.logprobs, expected, atol=1e-4)
        assert any(p.text.endswith(" ") for p in proposals)
    finally:
        handle.remove()


def test_logprobs_are_raw_log_softmax(model, tokenizer):
    policy = HFPolicy(
        model, tokenizer, SamplingConfig(temperature=0.5, top_p=0.9, max_step_tokens=16, seed=2)
    )
    context = encode(tokenizer, QUESTION)
    for proposal in policy.propose([context], n=3)[0]:
        expected = policy.token_logprobs(context, proposal.token_ids)
        np.testing.assert_allclose(proposal.logprobs, expected, atol=1e-4)


def test_sampling_seed_reproducible(model, tokenizer):
    context = encode(tokenizer, QUESTION)

    def texts(seed: int) -> list[str]:
        policy = HFPolicy(model, tokenizer, SamplingConfig(temperature=1.0, max_step_tokens=8))
        sampling = SamplingConfig(temperature=1.0, max_step_tokens=8, seed=seed)
        return [p.text for p in policy.propose([context], n=4, sampling=sampling)[0]]

    assert texts(7) == texts(7)
    assert texts(7) != texts(8)


def test_max_step_tokens_limits_length(model, tokenizer):
    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=4))
    proposal = policy.propose([encode(tokenizer, QUESTION)])[0][0]
    assert len(proposal.token_ids) <= 4


def test_propose_rejects_bad_input(model, tokenizer):
    policy = HFPolicy(model, tokenizer)
    with pytest.raises(ValueError, match="n=0"):
        policy.propose([encode(tokenizer, QUESTION)], n=0)
    with pytest.raises(ValueError, match="context 0 is empty"):
        policy.propose([np.zeros(0, dtype=np.int64)])
    with pytest.raises(ValueError, match="separator"):
        HFPolicy(model, tokenizer, separator="")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{28}", True),
        ("\\boxed{\\frac{1}{2}}", True),
        ("\\boxed{\\frac{1}{2}", False),
        ("the answer is 28", False),
    ],
)
def test_complete_boxed_detection(text, expected):
    assert _has_complete_boxed(text) is expected


def test_random_policy_is_seeded(tokenizer):
    context = encode(tokenizer, QUESTION)
    first = RandomPolicy(tokenizer, seed=4).propose([context], n=20)[0]
    second = RandomPolicy(tokenizer, seed=4).propose([context], n=20)[0]
    assert [p.text for p in first] == [p.text for p in second]
    assert any(p.is_final and "\\boxed{" in p.text for p in first)
    assert any(not p.is_final for p in first)
    for proposal in first:
        assert proposal.text.strip()
        assert tokenizer.decode(proposal.token_ids.tolist()) == proposal.text


def test_make_policy_names(model, tokenizer):
    assert set(POLICIES) >= {"random", "oracle"}
    assert isinstance(make_policy("random", tokenizer=tokenizer, seed=0), RandomPolicy)
    with pytest.raises(ValueError, match="needs env"):
        make_policy("oracle")
    with pytest.raises(ModelNotFoundError):
        make_policy("hf:./no-such-model-folder")
    with pytest.raises(ValueError, match="names no model"):
        make_policy("hf:")


def test_make_policy_local_folder(tmp_path, model, tokenizer):
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    policy = make_policy(f"hf:{tmp_path}", dtype="fp32")
    assert isinstance(policy, HFPolicy)
    proposal = policy.propose([encode(tokenizer, QUESTION)])[0][0]
    expected = HFPolicy(model, tokenizer).propose([encode(tokenizer, QUESTION)])[0][0]
    assert proposal.token_ids.tolist() == expected.token_ids.tolist()


# ---------------------------------------------------------------- with the environment


@pytest.fixture
def env(tokenizer):
    from reasoning_gym.env import ReasoningEnv

    return ReasoningEnv(task="arithmetic", tokenizer=tokenizer, max_steps=4, max_step_tokens=16)


def test_episode_through_env(env, model, tokenizer):
    from reasoning_gym.episodes import run_episode

    policy = HFPolicy(model, tokenizer, SamplingConfig(max_step_tokens=16))
    record = run_episode(env, policy, index=0)
    assert record.num_steps == len(record.steps) == len(record.step_rewards)
    assert record.truncated or record.terminated
    assert record.problem_id == env.problem.id
    assert record.gold == env.problem.answer
    state = env.get_state()
    expected_steps = [tokenizer.decode(step.ids.tolist()) for step in state.steps]
    assert record.steps == expected_steps
    assert record.generated_tokens == sum(len(step.ids) for step in state.steps)


def test_env_episode_cache_equals_no_cache(env, model, tokenizer):
    def steps(cache_reuse: bool) -> list[list[int]]:
        policy = HFPolicy(
            model, tokenizer, SamplingConfig(max_step_tokens=8), cache_reuse=cache_reuse
        )
        observation, _ = env.reset(options={"index": 1})
        step_ids = []
        done = False
        while not done:
            proposal = policy.propose([observation])[0][0]
            step_ids.append(proposal.token_ids.tolist())
            observation, _, terminated, truncated, _ = env.step(proposal.token_ids)
            done = terminated or truncated
        return step_ids

    cached = steps(True)
    assert len(cached) == 4
    assert cached == steps(False)


def test_oracle_policy_replays_gold(tokenizer):
    from reasoning_gym.env import ReasoningEnv
    from reasoning_gym.episodes import run_episode

    env = ReasoningEnv(task="arithmetic", tokenizer=tokenizer, max_steps=32)
    record = run_episode(env, OraclePolicy(env), index=2)
    gold_steps = list(env.problem.gold_steps or ())
    assert record.correct
    assert record.terminated
    assert record.steps[: len(gold_steps)] == gold_steps[: len(record.steps)]
