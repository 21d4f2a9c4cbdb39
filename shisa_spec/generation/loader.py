"""Load a causal LM and its tokenizer for the spec, with one-line errors for what users get wrong.

Real loading code: a hub id (from the local Hugging Face cache, or downloaded where the hub is
reachable) or a local directory; safetensors only; ``trust_remote_code`` off unless asked;
optional bitsandbytes quantisation and accelerate device maps. ``provenance`` records what was
loaded so transcripts and the generation cache can say exactly which model produced an output.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL = "augmxnt/shisa-7b-v1"
QUANTIZE = ("none", "8bit", "4bit")
DTYPES = ("auto", "bf16", "fp16", "fp32")


class ModelLoadError(RuntimeError):
    """Loading failed for a reason the user can fix; the message is one line."""


class NoCudaError(ModelLoadError):
    pass


@dataclass(frozen=True)
class LoadOptions:
    model: str = DEFAULT_MODEL
    revision: str | None = None
    device: str = "cuda"
    dtype: str = "auto"
    quantize: str = "none"
    device_map: str | None = None  # None: the whole model on `device`; "auto": accelerate spreads it
    trust_remote_code: bool = False


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    options: LoadOptions
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def device(self) -> Any:
        return self.model.device


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def resolve_dtype(name: str, device: str) -> Any:
    import torch

    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]
    except KeyError:
        raise ModelLoadError(f"unknown --dtype {name!r}; expected one of {', '.join(DTYPES)}") from None


def _hub_hint(model: str) -> str:
    return (
        f"download it where the hub is reachable (huggingface-cli download {model} --local-dir DIR) "
        f"and pass --model DIR"
    )


def looks_like_path(model: str) -> bool:
    """A --model that is meant as a directory, not a hub id (hub ids never start like this)."""
    return model.startswith(("/", "./", "../", "~")) or model in (".", "..")


def _check_local_dir(model: str) -> None:
    p = Path(model).expanduser()
    if not p.exists() and looks_like_path(model):
        raise ModelLoadError(f"--model {model}: no such directory")
    if p.exists():
        if not p.is_dir():
            raise ModelLoadError(f"--model {model}: is a file, not a model directory")
        if not (p / "config.json").is_file():
            raise ModelLoadError(f"--model {model}: not a model directory (no config.json)")
        if not any(p.glob("*.safetensors")):
            extra = " (only .bin weights: convert them to safetensors)" if any(p.glob("*.bin")) else ""
            raise ModelLoadError(f"--model {model}: no .safetensors weights{extra}")


def _quantization_config(quantize: str, compute_dtype: Any) -> Any:
    if quantize == "none":
        return None
    if quantize not in QUANTIZE:
        raise ModelLoadError(f"unknown --quantize {quantize!r}; expected one of {', '.join(QUANTIZE)}")
    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:  # ImportError, or a broken CUDA setup inside bitsandbytes
        raise ModelLoadError(
            f"--quantize {quantize} needs bitsandbytes, which failed to import ({type(e).__name__}: {e}); "
            "pip install 'shisa-spec[quant]'"
        ) from None
    from transformers import BitsAndBytesConfig

    if quantize == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute_dtype, bnb_4bit_use_double_quant=False
    )


def weight_bytes(model: Any) -> int:
    """Bytes held by the model's parameters and buffers (quantised sizes where quantised)."""
    total = 0
    for t in list(model.parameters()) + list(model.buffers()):
        total += t.numel() * t.element_size()
    return total


def cuda_memory_hint(device: str) -> str:
    import torch

    if not torch.cuda.is_available():
        return "GPU free memory unknown (no CUDA)"
    idx = torch.device(device).index if device.startswith("cuda") else None
    free, total = torch.cuda.mem_get_info(idx if idx is not None else torch.cuda.current_device())
    return f"GPU free memory {free / 2**30:.1f} GiB of {total / 2**30:.1f} GiB"


def oom_message(what: str, model_bytes: int | None, device: str, quantize: str) -> str:
    size = f"model weights {model_bytes / 2**30:.2f} GiB ({model_bytes} bytes)" if model_bytes else "model size unknown"
    tries = {"none": "--quantize 8bit or --quantize 4bit, or --batch-size 4", "8bit": "--quantize 4bit, or --batch-size 4"}.get(
        quantize, "--batch-size 1, or --device-map auto across GPUs"
    )
    return f"CUDA out of memory while {what}: {size}; {cuda_memory_hint(device)}; try {tries}"


def _expected_weight_bytes(model: str) -> int | None:
    p = Path(model)
    if p.is_dir():
        return sum(f.stat().st_size for f in p.glob("*.safetensors")) or None
    return None


@dataclass
class Prepared:
    """What is known before the weights are read: the tokenizer and the run's provenance.

    Enough to render prompts and compute cache keys, so a run served from the cache never loads
    the weights.
    """

    tokenizer: Any
    options: LoadOptions
    provenance: dict[str, Any]


def _check_cuda(opts: LoadOptions) -> None:
    import torch

    if opts.device.startswith("cuda") or opts.quantize != "none" or opts.device_map == "auto":
        if not torch.cuda.is_available():
            why = f"--quantize {opts.quantize}" if opts.quantize != "none" else f"--device {opts.device}"
            raise NoCudaError(f"{why} needs CUDA, and torch sees no CUDA device (torch {torch.__version__})")


def prepare(opts: LoadOptions) -> Prepared:
    """Check the options, load the tokenizer and config, and describe the run; raise ModelLoadError (one line)."""
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    _check_cuda(opts)
    _check_local_dir(opts.model)
    transformers.utils.logging.disable_progress_bar()  # one bar per weight file would drown pytest's output
    dtype = resolve_dtype(opts.dtype, opts.device)
    _quantization_config(opts.quantize, dtype)  # fail now, not after minutes of loading
    common = {"revision": opts.revision, "trust_remote_code": opts.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(opts.model, use_fast=True, **common)
        config = AutoConfig.from_pretrained(opts.model, **common)
    except (OSError, ValueError) as e:
        raise ModelLoadError(_explain_missing(opts, e)) from None
    _prepare_tokenizer(tokenizer)
    return Prepared(tokenizer, opts, provenance(config, tokenizer, opts, dtype))


def load(opts: LoadOptions, prepared: Prepared | None = None) -> LoadedModel:
    """Load tokenizer and model; raise ModelLoadError (one line) on anything a user can fix."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    prepared = prepared or prepare(opts)
    dtype = resolve_dtype(opts.dtype, opts.device)
    qconfig = _quantization_config(opts.quantize, dtype)
    device_map: Any = opts.device_map if opts.device_map == "auto" else {"": opts.device}
    kwargs: dict[str, Any] = {"use_safetensors": True, "device_map": device_map,
                              "revision": opts.revision, "trust_remote_code": opts.trust_remote_code}
    dtype_kw = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    kwargs[dtype_kw] = dtype
    if qconfig is not None:
        kwargs["quantization_config"] = qconfig
    try:
        model = AutoModelForCausalLM.from_pretrained(opts.model, **kwargs)
    except torch.cuda.OutOfMemoryError:
        raise ModelLoadError(oom_message("loading", _expected_weight_bytes(opts.model), opts.device, opts.quantize)) from None
    except (OSError, ValueError) as e:
        raise ModelLoadError(_explain_missing(opts, e)) from None
    model.eval()
    prov = dict(prepared.provenance)
    if getattr(model, "hf_device_map", None) and opts.device_map == "auto":
        prov["layers"] = layer_placement(model.hf_device_map)
    return LoadedModel(model, prepared.tokenizer, opts, prov)


def _prepare_tokenizer(tokenizer: Any) -> None:
    """Left padding for batched decoding; a pad token where the tokenizer has none.

    shisa-7b-v1 has no pad token. Padding with EOS (as the document's ask() did) would put EOS
    ids into rows' contexts; UNK is never a sensible output, so it is the safer pad.
    """
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token if tokenizer.unk_token is not None else tokenizer.eos_token


def _explain_missing(opts: LoadOptions, e: Exception) -> str:
    text = " ".join(str(e).split())
    if Path(opts.model).is_dir():
        return f"cannot load model from {opts.model}: {text[:300]}"
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    return (
        f"cannot load model {opts.model!r}"
        + (f" (revision {opts.revision})" if opts.revision else "")
        + f": not in the local Hugging Face cache and the hub {'is disabled (HF_HUB_OFFLINE=1)' if offline else 'could not be reached'}; "
        + _hub_hint(opts.model)
        + f" [{type(e).__name__}: {text[:200]}]"
    )


def _sha256(data: str | bytes) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


def weight_fingerprint(model_path: str) -> str | None:
    """A cheap fingerprint of local weight files: names, sizes and mtimes (hashing 15 GB would take minutes)."""
    path = Path(model_path)
    if not path.is_dir():
        return None
    parts = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(path.glob("*.safetensors"))]
    return _sha256(json.dumps(parts))


def tokenizer_fingerprint(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    return _sha256(body)


def run_device(device: str) -> str:
    """The device a model will sit on, with its index (``cuda`` means the current CUDA device)."""
    import torch

    if device == "cuda":
        return f"cuda:{torch.cuda.current_device()}"
    return device


def provenance(config: Any, tokenizer: Any, opts: LoadOptions, dtype: Any) -> dict[str, Any]:
    import torch
    import transformers

    device = run_device(opts.device) if opts.device_map != "auto" else "auto"
    prov: dict[str, Any] = {
        "model": opts.model,
        "revision": opts.revision,
        "commit": getattr(config, "_commit_hash", None),
        "weights": weight_fingerprint(opts.model),
        "dtype": str(dtype).replace("torch.", ""),
        "quantize": opts.quantize,
        "device": device,
        "device_map": opts.device_map,
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "chat_template": _sha256(tokenizer.chat_template) if getattr(tokenizer, "chat_template", None) else None,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    if device.startswith("cuda") or device == "auto":
        idx = torch.device(device).index or 0 if device != "auto" else 0
        prov["gpu"] = torch.cuda.get_device_name(idx)
        prov["capability"] = ".".join(map(str, torch.cuda.get_device_capability(idx)))
    return prov


def layer_placement(device_map: dict[str, Any]) -> dict[str, int]:
    """How many modules of an accelerate device map landed on each device."""
    counts: dict[str, int] = {}
    for dev in device_map.values():
        counts[str(dev)] = counts.get(str(dev), 0) + 1
    return counts
