"""Small, deterministic demo models built locally (no model hub).

Each model is a real Llama architecture with random weights and a real BPE
tokenizer with a chat template, saved with ``save_pretrained`` so that vLLM
loads it like any Hugging Face checkpoint. They produce gibberish, but every
serving code path (tokenisation, chat templates, KV cache, sampling) is real.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

DEMO_SCHEME = "demo://"
_BUILD_VERSION = 1

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}"
    "{% endif %}<|end|>\n"
    "{% endfor %}"
    "{% if tools %}<|tools|>\n{{ tools | tojson }}<|end|>\n{% endif %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<|end|>", "<|system|>", "<|user|>",
                  "<|assistant|>", "<|tool|>", "<|tools|>"]


@dataclass(frozen=True)
class DemoModelSpec:
    """Shape of one demo model; head_dim must be 64 for vLLM's CPU attention."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int = 512
    max_position_embeddings: int = 2048
    seed: int = 0


DEMO_MODELS: dict[str, DemoModelSpec] = {
    "light": DemoModelSpec(hidden_size=256, num_layers=2, num_heads=4, intermediate_size=512, seed=1),
    "reasoning": DemoModelSpec(hidden_size=512, num_layers=4, num_heads=8, intermediate_size=1024, seed=2),
}


def default_cache_dir() -> Path:
    """Where demo models are cached (override with ``FRONTIER_CACHE_DIR``)."""
    return Path(os.environ.get("FRONTIER_CACHE_DIR") or platformdirs.user_cache_dir("frontier"))


def _training_corpus() -> list[str]:
    words = (
        "the a of to and in is that for it as with was on be by this are or from at "
        "model router light reasoning answer question think step code math python def "
        "return import class function value number sum product equal solve prove why how "
        "what when where which who please explain write list give short long hello world"
    ).split()
    lines = []
    for i in range(400):
        lines.append(" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12)))
    lines += [str(n) for n in range(200)] + ["+ - * / = ( ) [ ] { } : ; , . ! ? ' \" # _"]
    return lines


def _build_tokenizer(out_dir: Path, vocab_size: int) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="<|end|>",
        pad_token="</s>",
        additional_special_tokens=SPECIAL_TOKENS[3:],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out_dir)


def _build_model(out_dir: Path, spec: DemoModelSpec, eos_id: int, bos_id: int, pad_id: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(spec.seed)
    config = LlamaConfig(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        tie_word_embeddings=False,
        torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(out_dir, safe_serialization=True)


def _spec_digest(name: str, spec: DemoModelSpec) -> str:
    payload = json.dumps({"name": name, "spec": asdict(spec), "v": _BUILD_VERSION}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def ensure_demo_model(name: str, cache_dir: Path | None = None) -> Path:
    """Return the directory of demo model ``name``, building it on first use."""
    if name not in DEMO_MODELS:
        raise ValueError(f"unknown demo model {name!r}; known: {sorted(DEMO_MODELS)}")
    spec = DEMO_MODELS[name]
    root = (cache_dir or default_cache_dir()) / "demo-models"
    out_dir = root / f"{name}-{_spec_digest(name, spec)}"
    marker = out_dir / ".complete"
    if marker.exists():
        return out_dir
    tmp_dir = root / f".{out_dir.name}.tmp-{os.getpid()}"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    _build_tokenizer(tmp_dir, spec.vocab_size)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_dir)
    _build_model(tmp_dir, spec, tok.eos_token_id, tok.bos_token_id, tok.pad_token_id)
    (tmp_dir / ".complete").write_text("ok\n")
    try:
        tmp_dir.rename(out_dir)
    except OSError:  # another process finished first; its copy is identical
        import shutil

        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_dir


def resolve_model_path(model: str, cache_dir: Path | None = None) -> str:
    """Turn ``demo://NAME`` into a built local directory; other values pass through."""
    if model.startswith(DEMO_SCHEME):
        return str(ensure_demo_model(model[len(DEMO_SCHEME):], cache_dir))
    return model
