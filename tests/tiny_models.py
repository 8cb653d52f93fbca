"""Tiny random models of the real architectures, built offline and saved with ``save_pretrained``.

Production code loads them through the same ``from_pretrained`` path as real checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import torch

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "retrieval of pages with tables charts and scanned documents",
    "what is the capital of france? paris is the capital",
    "late interaction models score query tokens against image patches",
] * 40


def bpe_tokenizer(specials: list[str], vocab_size: int = 400):
    """A byte-level BPE trained in memory, wrapped as a fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def _nonzero_bias(linear: torch.nn.Linear, seed: int) -> None:
    # Random weights + zero bias give all-zero vectors at padded positions (NaN after normalising);
    # a non-zero bias keeps every real vector well defined.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        linear.bias.copy_(torch.randn(linear.bias.shape, generator=g) * 0.1)


TINY_VISION = dict(
    hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=8
)
TINY_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
IDEFICS3_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<end_of_utterance>",
    "<image>",
    "<fake_token_around_image>",
    "<global-img>",
] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]


def build_colidefics3(
    out: Path,
    seed: int = 0,
    vision: dict | None = None,
    text: dict | None = None,
    longest_edge: int = 64,
    tile: int = 32,
    image_seq_len: int = 4,
    scale_factor: int = 2,
    vocab_size: int | None = None,
) -> Path:
    """ColIdefics3 (colSmol's architecture); tiny by default, any size with the keyword arguments."""
    from transformers import Idefics3Config
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    from docrag.indexes.colpali_compat import colpali_engine

    m = colpali_engine()
    tk = bpe_tokenizer(IDEFICS3_SPECIALS)
    tk.bos_token, tk.eos_token, tk.pad_token = "<|im_start|>", "<end_of_utterance>", "<|endoftext|>"
    tk.add_special_tokens({"additional_special_tokens": IDEFICS3_SPECIALS[3:]})
    ip = Idefics3ImageProcessorPil(size={"longest_edge": longest_edge}, max_image_size={"longest_edge": tile})
    proc = m.ColIdefics3Processor(image_processor=ip, tokenizer=tk, image_seq_len=image_seq_len)
    vocab = vocab_size or len(tk)
    text_cfg = {**TINY_TEXT, "num_key_value_heads": 2, **(text or {})}
    cfg = Idefics3Config(
        vision_config=vision or TINY_VISION,
        text_config={**text_cfg, "vocab_size": vocab, "max_position_embeddings": 8192, "pad_token_id": tk.pad_token_id},
        scale_factor=scale_factor,
        image_token_id=tk.convert_tokens_to_ids("<image>"),
        vocab_size=vocab,
        pad_token_id=tk.pad_token_id,
    )
    torch.manual_seed(seed)
    model = m.ColIdefics3(cfg).eval()
    _nonzero_bias(model.linear, seed)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def build_colpali(out: Path, seed: int = 0) -> Path:
    from transformers import PaliGemmaConfig
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    from docrag.indexes.colpali_compat import colpali_engine

    m = colpali_engine()
    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<image>"]
    tk = bpe_tokenizer(specials)
    tk.pad_token, tk.eos_token, tk.bos_token, tk.unk_token = "<pad>", "<eos>", "<bos>", "<unk>"
    tk.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tk.image_token = "<image>"
    tk.image_token_id = tk.convert_tokens_to_ids("<image>")
    ip = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    ip.image_seq_length = 16  # (32 / 8) ** 2 patches
    proc = m.ColPaliProcessor(image_processor=ip, tokenizer=tk)  # adds the 1152 loc/seg tokens
    vocab = len(tk)
    cfg = PaliGemmaConfig(
        vision_config={**TINY_VISION, "projection_dim": 32},
        text_config={
            **TINY_TEXT,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "vocab_size": vocab,
            "max_position_embeddings": 512,
        },
        image_token_index=tk.image_token_id,
        vocab_size=vocab,
        projection_dim=32,
        hidden_size=32,
        pad_token_id=tk.pad_token_id,
    )
    torch.manual_seed(seed)
    model = m.ColPali(cfg).eval()
    _nonzero_bias(model.custom_text_proj, seed)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def wordpiece_tokenizer(max_length: int):
    """A lowercase BERT-style WordPiece tokenizer ([CLS] ... [SEP]) trained in memory."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "</s>"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        eos_token="</s>",
        model_max_length=max_length,
    )


def build_nomic_text(out: Path, seed: int = 0) -> Path:
    """A tiny NomicBert (transformers' built-in port of nomic-embed-text) with a WordPiece tokenizer."""
    from transformers import NomicBertConfig, NomicBertModel

    tk = wordpiece_tokenizer(64)
    cfg = NomicBertConfig(
        vocab_size=len(tk),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tk.pad_token_id,
    )
    torch.manual_seed(seed)
    NomicBertModel(cfg).eval().save_pretrained(out)
    tk.save_pretrained(out)
    return out


def build_siglip(out: Path, seed: int = 0) -> Path:
    """A tiny SiglipModel with a WordPiece tokenizer and the PIL image processor."""
    from transformers import SiglipConfig, SiglipModel, SiglipProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tk = wordpiece_tokenizer(16)
    ip = SiglipImageProcessorPil(size={"height": 32, "width": 32})
    proc = SiglipProcessor(image_processor=ip, tokenizer=tk)
    cfg = SiglipConfig(
        text_config=dict(
            **TINY_TEXT,
            vocab_size=len(tk),
            max_position_embeddings=16,
            projection_size=32,
            pad_token_id=tk.pad_token_id,
            eos_token_id=tk.eos_token_id,
            bos_token_id=None,
        ),
        vision_config=TINY_VISION,
    )
    torch.manual_seed(seed)
    SiglipModel(cfg).eval().save_pretrained(out)
    proc.save_pretrained(out)
    return out
