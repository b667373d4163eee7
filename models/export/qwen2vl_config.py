"""Read a Hugging Face Qwen2-VL checkpoint directory's configuration, in either layout.

* flat legacy layout (the public Qwen2-VL-2B/7B repositories, transformers 4.x):
  text keys at the top level, ``rope_theta`` + ``rope_scaling: {type: "mrope", mrope_section}``,
  ``preprocessor_config.json`` with ``min_pixels`` / ``max_pixels``.
* nested layout (``save_pretrained`` of transformers 5.x): text keys under ``text_config``,
  ``rope_parameters: {rope_type, mrope_section, rope_theta}``, ``processor_config.json`` whose
  ``image_processor.size`` holds ``shortest_edge`` (= min_pixels) / ``longest_edge`` (= max_pixels).
  (4.5x "nested" saves, with ``rope_scaling``/``rope_theta`` inside ``text_config``, are accepted too.)

Only the standard library is used, so the same rules can be mirrored 1:1 by the Rust loader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass
class TextConfig:
    hidden_size: int
    num_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    rms_norm_eps: float
    rope_theta: float
    mrope_section: list[int]


@dataclass
class VisionConfig:
    depth: int
    embed_dim: int
    num_heads: int
    mlp_ratio: int
    patch_size: int
    temporal_patch_size: int
    spatial_merge_size: int
    in_channels: int
    out_hidden_size: int


@dataclass
class PreprocessConfig:
    min_pixels: int
    max_pixels: int
    patch_size: int
    temporal_patch_size: int
    merge_size: int
    image_mean: list[float]
    image_std: list[float]
    resample: int = 3  # PIL.Image.BICUBIC
    rescale_factor: float = 1.0 / 255.0


@dataclass
class TokenIds:
    image_token_id: int
    video_token_id: int
    vision_start_token_id: int
    vision_end_token_id: int


@dataclass
class Qwen2VLFiles:
    layout: str  # "flat" or "nested"
    text: TextConfig
    vision: VisionConfig
    preprocess: PreprocessConfig
    ids: TokenIds
    tie_word_embeddings: bool
    raw: dict = field(repr=False, default_factory=dict)


def _first(*candidates, default=None):
    for c in candidates:
        if c is not None:
            return c
    return default


def read_config(hf_dir: str | Path) -> Qwen2VLFiles:
    hf_dir = Path(hf_dir)
    raw = json.loads((hf_dir / "config.json").read_text())
    if raw.get("model_type") not in ("qwen2_vl", None):
        raise ValueError(f"{hf_dir}/config.json: model_type {raw.get('model_type')!r} is not qwen2_vl")

    tc = raw.get("text_config")
    layout = "nested" if isinstance(tc, dict) and "hidden_size" in tc else "flat"
    t = tc if layout == "nested" else raw

    def tk(key, default=None):
        return t.get(key, raw.get(key, default))

    rope = _first(t.get("rope_parameters"), t.get("rope_scaling"), raw.get("rope_parameters"), raw.get("rope_scaling"), default={})
    mrope = rope.get("mrope_section")
    if mrope is None:
        raise ValueError("no mrope_section in rope_parameters / rope_scaling: not a Qwen2-VL config")
    theta = float(_first(rope.get("rope_theta"), t.get("rope_theta"), raw.get("rope_theta"), default=1000000.0))

    hidden = int(tk("hidden_size"))
    heads = int(tk("num_attention_heads"))
    kv = int(_first(tk("num_key_value_heads"), default=heads))
    if hidden % heads:
        raise ValueError(f"hidden_size {hidden} not divisible by num_attention_heads {heads}")
    # transformers' attention uses hidden/heads and ignores a head_dim key; the rotary table
    # would honour one, so a different value would make HF itself inconsistent.
    head_dim = hidden // heads
    if tk("head_dim") not in (None, head_dim):
        raise ValueError(f"head_dim {tk('head_dim')} != hidden_size/num_attention_heads {head_dim}")
    if heads % kv:
        raise ValueError(f"num_attention_heads {heads} not divisible by num_key_value_heads {kv}")
    if sum(mrope) * 2 != head_dim:
        raise ValueError(f"mrope_section {mrope} must sum to head_dim/2 = {head_dim // 2}")
    if tk("use_sliding_window", False):
        raise ValueError("use_sliding_window=true is not supported (Qwen2-VL ships with it off)")
    if tk("hidden_act", "silu") != "silu":
        raise ValueError(f"text hidden_act {tk('hidden_act')!r} is not silu")

    text = TextConfig(
        hidden_size=hidden,
        num_layers=int(tk("num_hidden_layers")),
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        intermediate_size=int(tk("intermediate_size")),
        vocab_size=int(tk("vocab_size")),
        rms_norm_eps=float(tk("rms_norm_eps", 1e-6)),
        rope_theta=theta,
        mrope_section=[int(x) for x in mrope],
    )

    vc = raw["vision_config"]
    vision = VisionConfig(
        depth=int(vc.get("depth", 32)),
        embed_dim=int(vc.get("embed_dim", 1280)),
        num_heads=int(vc.get("num_heads", 16)),
        mlp_ratio=int(vc.get("mlp_ratio", 4)),
        patch_size=int(vc.get("patch_size", 14)),
        temporal_patch_size=int(vc.get("temporal_patch_size", 2)),
        spatial_merge_size=int(vc.get("spatial_merge_size", 2)),
        in_channels=int(_first(vc.get("in_channels"), vc.get("in_chans"), default=3)),
        out_hidden_size=int(vc.get("hidden_size", hidden)),
    )
    if vision.out_hidden_size != hidden:
        raise ValueError(f"vision_config.hidden_size {vision.out_hidden_size} != text hidden_size {hidden}")
    if vision.embed_dim % vision.num_heads or (vision.embed_dim // vision.num_heads) % 4:
        raise ValueError("vision head dim must be a multiple of 4 (2-D rotary)")
    if vc.get("hidden_act", "quick_gelu") != "quick_gelu":
        raise ValueError(f"vision hidden_act {vc.get('hidden_act')!r} is not quick_gelu")

    ids = TokenIds(
        image_token_id=int(raw.get("image_token_id", 151655)),
        video_token_id=int(raw.get("video_token_id", 151656)),
        vision_start_token_id=int(raw.get("vision_start_token_id", 151652)),
        vision_end_token_id=int(raw.get("vision_end_token_id", 151653)),
    )
    tie = bool(_first(raw.get("tie_word_embeddings"), t.get("tie_word_embeddings"), default=False))

    return Qwen2VLFiles(layout, text, vision, read_preprocess(hf_dir, vision), ids, tie, raw)


def read_preprocess(hf_dir: Path, vision: VisionConfig) -> PreprocessConfig:
    """min/max pixels etc. `min_pixels`/`max_pixels` win over `size` (as transformers maps them)."""
    ip = None
    pc = hf_dir / "processor_config.json"
    if pc.exists():
        ip = json.loads(pc.read_text()).get("image_processor")
    pp = hf_dir / "preprocessor_config.json"
    if ip is None and pp.exists():
        ip = json.loads(pp.read_text())
    if ip is None:
        ip = {}
    size = ip.get("size") or {}
    # transformers' class defaults (56*56, 28*28*1280) apply when nothing is configured.
    min_px = int(_first(ip.get("min_pixels"), size.get("shortest_edge"), default=56 * 56))
    max_px = int(_first(ip.get("max_pixels"), size.get("longest_edge"), default=28 * 28 * 1280))
    return PreprocessConfig(
        min_pixels=min_px,
        max_pixels=max_px,
        patch_size=int(ip.get("patch_size", vision.patch_size)),
        temporal_patch_size=int(ip.get("temporal_patch_size", vision.temporal_patch_size)),
        merge_size=int(ip.get("merge_size", vision.spatial_merge_size)),
        image_mean=[float(x) for x in ip.get("image_mean", CLIP_MEAN)],
        image_std=[float(x) for x in ip.get("image_std", CLIP_STD)],
        resample=int(ip.get("resample", 3)),
        rescale_factor=float(ip.get("rescale_factor", 1.0 / 255.0)),
    )
