"""Tiny random sentence-transformers checkpoints in the layouts of the text leg's models, built offline with the
files a hub checkpoint carries (``modules.json``, ``1_Pooling``, ``2_Normalize``, the prompts).
"""

from __future__ import annotations

from pathlib import Path

import torch

from docrag.indexes.embedders import POOLING_MODES

from .tiny_models import TINY_TEXT, bpe_tokenizer, wordpiece_tokenizer

__all__ = [
    "ARCTIC_M_V15",
    "ARCTIC_QUERY_PREFIX",
    "QWEN3_QUERY_PREFIX",
    "build_st_bert",
    "build_st_qwen3",
    "st_files",
]

ARCTIC_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "
QWEN3_QUERY_PREFIX = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"


def st_files(out: Path, dim: int, pooling: str, max_seq_length: int, prompts: dict[str, str]) -> None:
    """The files a sentence-transformers checkpoint on the hub carries: Transformer → Pooling → Normalize."""
    import json

    def write(name: str, data: object) -> None:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps(data, indent=2))

    kinds = ("Transformer", "Pooling", "Normalize")
    paths = ("", "1_Pooling", "2_Normalize")
    write("modules.json", [
        {"idx": i, "name": str(i), "path": p, "type": f"sentence_transformers.models.{k}"}
        for i, (k, p) in enumerate(zip(kinds, paths, strict=True))
    ])  # fmt: skip
    flags = {flag: name == pooling for name, flag in POOLING_MODES.items()}
    write("1_Pooling/config.json", {"word_embedding_dimension": dim, **flags, "include_prompt": True})
    (out / "2_Normalize").mkdir(exist_ok=True)
    write("sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    write("config_sentence_transformers.json", {"prompts": prompts, "default_prompt_name": None})


ARCTIC_M_V15 = dict(  # snowflake-arctic-embed-m-v1.5's config.json (bert-base-uncased's shape)
    hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
    max_position_embeddings=512, vocab_size=30522,
)  # fmt: skip


def build_st_bert(
    out: Path,
    pooling: str = "cls",
    seed: int = 0,
    prompts: dict[str, str] | None = None,
    *,
    size: dict[str, int] | None = None,
    tokenizer: Path | None = None,
) -> Path:
    """A random BERT sentence-transformers checkpoint in the layout of snowflake-arctic-embed-m-v1.5 (CLS pooling,
    normalised, a query prompt) or, with ``pooling="mean"`` and no prompts, all-MiniLM-L6-v2. Tiny by default;
    ``size`` (e.g. ``ARCTIC_M_V15``) and ``tokenizer`` (a folder with a BERT tokenizer of that vocabulary, such
    as all-MiniLM-L6-v2's, which is bert-base-uncased's) give the full-size architecture, for benchmarks."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    tk = AutoTokenizer.from_pretrained(str(tokenizer)) if tokenizer else wordpiece_tokenizer(64)
    shape = size or {**TINY_TEXT, "max_position_embeddings": 64, "vocab_size": len(tk)}
    cfg = BertConfig(pad_token_id=tk.pad_token_id, **shape)
    torch.manual_seed(seed)
    BertModel(cfg).eval().save_pretrained(out)  # with its pooler, as BERT checkpoints on the hub are
    tk.save_pretrained(out)
    default = {"query": ARCTIC_QUERY_PREFIX, "document": ""} if pooling == "cls" else {}
    n = shape["max_position_embeddings"]
    st_files(out, shape["hidden_size"], pooling, n, default if prompts is None else prompts)
    return out


def build_st_qwen3(out: Path, seed: int = 0) -> Path:
    """A tiny Qwen3 sentence-transformers checkpoint in the layout of Qwen3-Embedding: last-token pooling over
    left-padded input that ends with <|endoftext|>, normalised, an instruction before each query."""
    from tokenizers import processors
    from transformers import Qwen3Config, Qwen3Model

    eos = "<|endoftext|>"
    tk = bpe_tokenizer([eos, "<|im_start|>", "<|im_end|>"], padding_side="left", pad_token=eos, eos_token=eos)
    tk.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", pair=f"$A {eos} $B {eos}", special_tokens=[(eos, tk.convert_tokens_to_ids(eos))]
    )
    tk.model_max_length = 128
    cfg = Qwen3Config(
        vocab_size=len(tk),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=16,
        max_position_embeddings=128,
        pad_token_id=tk.pad_token_id,
        eos_token_id=tk.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    Qwen3Model(cfg).eval().save_pretrained(out)
    tk.save_pretrained(out)
    st_files(out, 32, "lasttoken", 128, {"query": QWEN3_QUERY_PREFIX, "document": ""})
    return out
