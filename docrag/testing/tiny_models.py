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


def bpe_tokenizer(specials: list[str], vocab_size: int = 400, texts: list[str] | None = None, **kwargs):
    """A byte-level BPE trained in memory on ``texts`` (default: a small corpus), wrapped as a fast tokenizer
    (``kwargs`` go to its constructor)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts or CORPUS, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)


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


def _tiling_specials(pad: str, bos: str) -> list[str]:
    """Special tokens of an Idefics3-style processor (image tiles as <row_i_col_j>): pad, bos, eos, then the
    image tokens."""
    image = ["<image>", "<fake_token_around_image>", "<global-img>"]
    return [pad, bos, "<end_of_utterance>", *image] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]


def _tiling_tokenizer(specials: list[str]):
    tk = bpe_tokenizer(specials)
    tk.pad_token, tk.bos_token, tk.eos_token = specials[:3]
    tk.add_special_tokens({"additional_special_tokens": specials[3:]})
    return tk


IDEFICS3_SPECIALS = _tiling_specials("<|endoftext|>", "<|im_start|>")


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
    tk = _tiling_tokenizer(IDEFICS3_SPECIALS)
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


SIGLIP_BASE_224 = dict(  # SigLIP 2 base/16-224's towers (text and vision share this shape)
    hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12
)


def build_siglip(out: Path, seed: int = 0, size: dict | None = None, image_size: int = 32) -> Path:
    """A tiny SiglipModel with a WordPiece tokenizer and the PIL image processor; with ``size`` (e.g.
    ``SIGLIP_BASE_224``, ``image_size=224``) a full-size layout of random weights (the vocabulary stays tiny:
    same compute per token)."""
    from transformers import SiglipConfig, SiglipModel, SiglipProcessor
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    tk = wordpiece_tokenizer(16 if size is None else 64)
    ip = SiglipImageProcessorPil(size={"height": image_size, "width": image_size})
    proc = SiglipProcessor(image_processor=ip, tokenizer=tk)
    text_shape = TINY_TEXT if size is None else size
    vision = TINY_VISION if size is None else dict(**size, image_size=image_size, patch_size=16)
    cfg = SiglipConfig(
        text_config=dict(
            **text_shape,
            vocab_size=len(tk),
            max_position_embeddings=16 if size is None else 64,
            projection_size=text_shape["hidden_size"],
            pad_token_id=tk.pad_token_id,
            eos_token_id=tk.eos_token_id,
            bos_token_id=None,
        ),
        vision_config=vision,
    )
    torch.manual_seed(seed)
    SiglipModel(cfg).eval().save_pretrained(out)
    proc.save_pretrained(out)
    return out


MODERNVBERT_SPECIALS = _tiling_specials("<|padding|>", "<|begin_of_text|>")


def build_colmodernvbert(
    out: Path,
    seed: int = 0,
    vision: dict | None = None,
    text: dict | None = None,
    longest_edge: int = 64,
    tile: int = 32,
    pixel_shuffle: int = 2,
    vocab_size: int | None = None,
) -> Path:
    """ColModernVBert (ModernBERT text encoder + SigLIP, Idefics3 processing); tiny by default."""
    from transformers import ModernVBertConfig
    from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

    from docrag.indexes.colpali_compat import colpali_engine

    m = colpali_engine()
    tk = _tiling_tokenizer(MODERNVBERT_SPECIALS)
    ip = Idefics3ImageProcessorPil(size={"longest_edge": longest_edge}, max_image_size={"longest_edge": tile})
    vision = vision or TINY_VISION
    image_seq_len = (vision["image_size"] // vision["patch_size"]) ** 2 // pixel_shuffle**2
    proc = m.ColModernVBertProcessor(image_processor=ip, tokenizer=tk, image_seq_len=image_seq_len)
    vocab = vocab_size or len(tk)
    text_cfg = {
        **TINY_TEXT,
        "global_attn_every_n_layers": 1,
        **(text or {}),
        "vocab_size": vocab,
        "pad_token_id": tk.pad_token_id,
        "bos_token_id": tk.bos_token_id,
        "eos_token_id": tk.eos_token_id,
        "cls_token_id": tk.bos_token_id,
        "sep_token_id": tk.eos_token_id,
    }
    cfg = ModernVBertConfig(
        text_config={"model_type": "modernbert", **text_cfg},
        vision_config={"model_type": "siglip_vision_model", **vision},
        image_token_id=tk.convert_tokens_to_ids("<image>"),
        pixel_shuffle_factor=pixel_shuffle,
    )
    torch.manual_seed(seed)
    model = m.ColModernVBert(cfg).eval()
    _nonzero_bias(model.custom_text_proj, seed)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


GEMMA3_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]
GEMMA3_IMAGE_TOKENS = {
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
}
# Gemma 3's chat template, reduced to what ColGemmaProcessor3 renders: one user turn of images and text.
GEMMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<start_of_turn>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] | trim }}{% else %}"
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<start_of_image>"
    "{% elif item['type'] == 'text' %}{{ item['text'] | trim }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_turn>\n{% endfor %}"
)


def build_colgemma3(out: Path, seed: int = 0) -> Path:
    """ColGemma3 (Gemma 3 + SigLIP, fixed 32 px images, 4 soft tokens per image); tiny."""
    from transformers import Gemma3Config
    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    from docrag.indexes.colpali_compat import colpali_engine

    m = colpali_engine()
    specials = GEMMA3_SPECIALS + list(GEMMA3_IMAGE_TOKENS.values())
    # extra_special_tokens: the boi_token / eoi_token / image_token (and *_id) attributes Gemma3Processor reads
    tk = bpe_tokenizer(specials, extra_special_tokens=GEMMA3_IMAGE_TOKENS)
    tk.pad_token, tk.eos_token, tk.bos_token, tk.unk_token = "<pad>", "<eos>", "<bos>", "<unk>"
    tk.add_special_tokens({"additional_special_tokens": specials[4:]})
    tk.chat_template = GEMMA3_CHAT_TEMPLATE
    ip = Gemma3ImageProcessorPil(size={"height": 32, "width": 32})
    tokens_per_image = 4  # (32 / 8) ** 2 patches, average-pooled 2 x 2
    proc = m.ColGemmaProcessor3(image_processor=ip, tokenizer=tk, image_seq_length=tokens_per_image)
    ids = {name: tk.convert_tokens_to_ids(tok) for name, tok in GEMMA3_IMAGE_TOKENS.items()}
    cfg = Gemma3Config(
        text_config={
            **TINY_TEXT,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "query_pre_attn_scalar": 16,
            "sliding_window": 16,
            "vocab_size": len(tk),
            "max_position_embeddings": 512,
            "pad_token_id": tk.pad_token_id,
            "bos_token_id": tk.bos_token_id,
            "eos_token_id": tk.eos_token_id,
        },
        vision_config=TINY_VISION,
        mm_tokens_per_image=tokens_per_image,
        boi_token_index=ids["boi_token"],
        eoi_token_index=ids["eoi_token"],
        image_token_index=ids["image_token"],
    )
    torch.manual_seed(seed)
    model = m.ColGemma3(cfg).eval()
    _nonzero_bias(model.custom_text_proj, seed)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


QWEN_VL_SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]


def _qwen3_vl_parts(tk_specials: list[str] = QWEN_VL_SPECIALS):
    """Tokenizer, image and video processors shared by the ColQwen3 and ColQwen3.5 builders.

    The video processor is a torchvision object in transformers 5 (its base classes are dummies without
    torchvision), so these builders only run where torchvision imports.
    """
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    tk = bpe_tokenizer(tk_specials)
    tk.pad_token, tk.eos_token = "<|endoftext|>", "<|im_end|>"
    tk.add_special_tokens({"additional_special_tokens": tk_specials[1:]})
    grid = dict(patch_size=8, merge_size=2, temporal_patch_size=2)
    ip = Qwen2VLImageProcessorPil(**grid, size={"shortest_edge": 16 * 16, "longest_edge": 64 * 64})
    vp = Qwen3VLVideoProcessor(**grid)
    ids = {
        "image_token_id": tk.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tk.convert_tokens_to_ids("<|video_pad|>"),
        "vision_start_token_id": tk.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tk.convert_tokens_to_ids("<|vision_end|>"),
    }
    vision = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        patch_size=8,
        spatial_merge_size=2,
        temporal_patch_size=2,
        out_hidden_size=32,
        num_position_embeddings=64,
    )
    # head_dim 16: mrope_section sums to head_dim / 2
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2], "mrope_interleaved": True}
    text = dict(
        **TINY_TEXT,
        num_key_value_heads=1,
        head_dim=16,
        vocab_size=len(tk),
        max_position_embeddings=512,
        pad_token_id=tk.pad_token_id,
        rope_parameters=rope,
    )
    return tk, ip, vp, ids, vision, text


def build_colqwen3(out: Path, seed: int = 0) -> Path:
    """ColQwen3 (Qwen3-VL: deepstack vision features, interleaved M-RoPE; 320-d output); tiny. Needs torchvision."""
    from transformers import Qwen3VLConfig

    from docrag.indexes.colpali_compat import colpali_engine

    m = colpali_engine()
    tk, ip, vp, ids, vision, text = _qwen3_vl_parts()
    proc = m.ColQwen3Processor(image_processor=ip, tokenizer=tk, video_processor=vp)
    cfg = Qwen3VLConfig(text_config=text, vision_config={**vision, "deepstack_visual_indexes": [0]}, **ids)
    torch.manual_seed(seed)
    model = m.ColQwen3(cfg).eval()
    _nonzero_bias(model.custom_text_proj, seed)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def build_colqwen3_5(out: Path, seed: int = 0) -> Path:
    """ColQwen3.5 (Qwen3.5: Gated DeltaNet + full-attention layers, Qwen3-VL processing); tiny. Needs torchvision."""
    from transformers import Qwen3_5Config

    from docrag.indexes.colpali_compat import colpali_engine

    m = colpali_engine()
    tk, ip, vp, ids, vision, text = _qwen3_vl_parts()
    proc = m.ColQwen3_5Processor(image_processor=ip, tokenizer=tk, video_processor=vp)
    text = {
        **text,
        "layer_types": ["linear_attention", "full_attention"],
        "linear_key_head_dim": 8,
        "linear_value_head_dim": 8,
        "linear_num_key_heads": 2,
        "linear_num_value_heads": 2,
        "rope_parameters": {**text["rope_parameters"], "partial_rotary_factor": 1.0},
    }
    cfg = Qwen3_5Config(text_config=text, vision_config=vision, **ids)
    torch.manual_seed(seed)
    model = m.ColQwen3_5(cfg).eval()
    _nonzero_bias(model.custom_text_proj, seed)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def build_lora_adapter(base: Path, out: Path, model_class: str, base_name: str, seed: int = 1) -> Path:
    """A PEFT LoRA adapter over the tiny ``base`` (saved like the vidore adapters: adapter weights, the
    processor's files, no config.json), whose adapter_config names ``base_name`` as its base. LoRA B is
    random (not zero), so the adapter really changes the vectors."""
    import json

    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor

    from docrag.indexes.colpali_compat import colpali_engine

    model = getattr(colpali_engine(), model_class).from_pretrained(str(base)).eval()
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["custom_text_proj"], init_lora_weights=False))
    peft_model.save_pretrained(out)
    AutoProcessor.from_pretrained(str(base)).save_pretrained(out)
    (out / "config.json").unlink(missing_ok=True)
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = base_name
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return out
