#!/usr/bin/env python3
"""Build a tiny RANDOM Qwen2-VL checkpoint (same architecture as Qwen2-VL-7B) for tests.

Nothing is downloaded: the weights come from a seeded random init and the tokenizer is a
small byte-level BPE trained here on a deterministic corpus (Lumine action strings, key
names, a few English/Chinese sentences and the default system prompts).

    python models/export/make_test_model.py --out models/test-tiny/hf --variant tiny --seed 0
    python models/export/make_test_model.py --out models/test-flat/hf --variant flat --seed 0

Variants
  tiny  transformers 5.x nested layout (text_config / rope_parameters / processor_config.json),
        8 heads / 4 KV heads so the decoder splits over 1, 2 and 4 tensor-parallel ranks.
  flat  different sizes everywhere (6 heads / 2 KV heads, GQA ratio 3, mrope [4,2,2], ...)
        rewritten in the FLAT legacy layout of the Qwen2-VL-7B repository (top-level text
        keys, rope_scaling {type: mrope}, preprocessor_config.json with min/max_pixels,
        chat_template.json). Exercises the second config parser of export.py.

The result loads with Qwen2VLForConditionalGeneration.from_pretrained and
AutoProcessor.from_pretrained (both checked at the end of this script).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub: everything is made here
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers, Regex  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lumine_prompts import INSTRUCTION_PROMPT, REASONING_PROMPT  # noqa: E402

# Order matters: these are appended after the BPE vocabulary, like Qwen2 (whose
# <|endoftext|> is the first id after the byte-level BPE merges).
SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|thought_start|>",
    "<|thought_end|>",
    "<|action_start|>",
    "<|action_end|>",
]

# Same pre-tokenizer regex as Qwen2 (transformers' tokenization_qwen2.PRETOKENIZE_REGEX): digits
# are split one by one and words keep their leading space, so the test tokenizer splits actions
# the way the real one does (SPEC.md 5.3).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# Qwen2-VL-7B-Instruct chat template (chat_template.json of the public repository).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
MIN_PIXELS = 3136  # 56*56, as Qwen2-VL-7B
MAX_PIXELS = 12845056  # 28*28*16384, as Qwen2-VL-7B: a 1280x720 frame is not downscaled

VARIANTS = {
    "tiny": dict(
        layout="nested",
        bpe_vocab=800,  # byte alphabet (256) + merges; specials are appended after
        vocab_size=896,  # padded like Qwen (rows past the tokenizer are never produced by it)
        hidden_size=128,
        num_attention_heads=8,  # head_dim 16
        num_key_value_heads=4,  # 1, 2 or 4 tensor-parallel ranks
        num_hidden_layers=3,
        intermediate_size=256,
        mrope_section=[2, 3, 3],
        vision_depth=3,
        vision_embed_dim=48,
        vision_num_heads=3,  # vision head_dim 16
    ),
    "flat": dict(
        layout="flat",
        bpe_vocab=600,
        vocab_size=640,
        hidden_size=96,
        num_attention_heads=6,  # head_dim 16
        num_key_value_heads=2,  # GQA ratio 3
        num_hidden_layers=2,
        intermediate_size=160,
        mrope_section=[4, 2, 2],  # a split other than [2,3,3]: catches hard-coded sections
        vision_depth=2,
        vision_embed_dim=32,
        vision_num_heads=2,  # vision head_dim 16
    ),
}

# Random-init scale. HF's default (0.02) gives nearly uniform attention and logits whose
# top-1/top-2 gaps are tiny, so a random test model would barely depend on the image or the
# positions and greedy parity would be fragile. 0.08 gives logits with O(1) spread and a
# clear dependence on image content and M-RoPE positions (see the report printed at the end).
INIT_STD = 0.08

# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

KEY_NAMES = (
    [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    + ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero"]
    + ["One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve"]
    + ["Shift", "Ctrl", "Alt", "Space", "Tab", "Esc", "Caps", "Enter", "Backspace", "Up", "Down", "Left", "Right"]
    + ["LB", "RB", "MB", "XB1", "XB2"]
)
COMMON_KEYS = ["W", "A", "S", "D", "Shift", "Space", "LB", "RB", "E", "F", "Q", "R", "one", "two", "Esc"]

ENGLISH = [
    "Walk to the door and open it.",
    "Follow the road to the next village and talk to the merchant.",
    "Defeat the enemies near the bridge, then collect the chest.",
    "Open the map and mark the next quest location.",
    "Climb the cliff on the left and glide down to the lake.",
    "The last plan failed: the door is locked, look for a key.",
    "Describe the picture.",
    "What should the player do next?",
    "You are a helpful assistant.",
]
CHINESE = [
    "前方有敌人，先躲到石头后面。",
    "打开地图，寻找下一个任务地点。",
    "向左转，沿着小路前进。",
    "背包满了，先整理物品。",
    "跳过这段对话，继续主线任务。",
    "爬上左边的悬崖，然后滑翔到湖边。",
    "上一个计划失败了，门是锁着的，需要找钥匙。",
    "打败桥边的敌人，然后打开宝箱。",
]


def random_action(rng: random.Random) -> str:
    """One action in the Lumine action language, with realistic holds (SPEC.md section 3)."""

    def mouse() -> int:
        r = rng.random()
        if r < 0.4:
            return 0
        if r < 0.8:
            return rng.randint(-60, 60)
        return rng.randint(-999, 999)

    dz = 0 if rng.random() < 0.9 else rng.randint(-5, 5)
    held: list[str] = []
    groups = []
    for _ in range(6):
        if rng.random() < 0.35:  # change what is held
            n = rng.choice([0, 1, 1, 2, 2, 3, 4])
            pool = COMMON_KEYS if rng.random() < 0.8 else KEY_NAMES
            held = rng.sample(pool, n)
        groups.append(" ".join(held))
    return f"{mouse()} {mouse()} {dz} ; " + " ; ".join(groups)


def tokenizer_corpus() -> list[str]:
    # Fixed seed, independent of the model seed: the tokenizer of a variant never changes.
    rng = random.Random(20251111)
    lines = [INSTRUCTION_PROMPT, REASONING_PROMPT] * 3
    lines += ENGLISH * 3 + CHINESE * 3
    lines += [" ".join(KEY_NAMES)] * 4
    lines += ["<|im_start|>system\n", "<|im_start|>user\n", "<|im_start|>assistant\n"] * 3
    for _ in range(3000):
        a = random_action(rng)
        lines.append(a)
        lines.append(a.replace(" ; ", ";"))  # non-canonical spacing also occurs
    for i in range(200):
        lines.append(f"{CHINESE[i % len(CHINESE)]} {random_action(rng)}")
    return lines


def train_tokenizer(bpe_vocab: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=bpe_vocab,
        min_frequency=2,
        show_progress=False,
        # Every byte gets a token, so any text (other languages, emoji) still encodes.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    # Specials go after the BPE vocabulary (Qwen2 layout); special=True keeps them atomic
    # and lets decode(skip_special_tokens=True) drop them.
    tok.add_special_tokens(SPECIAL_TOKENS)
    return tok


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------


def build_config(v: dict, tok_ids: dict[str, int]):
    from transformers import Qwen2VLConfig

    text = dict(
        vocab_size=v["vocab_size"],
        hidden_size=v["hidden_size"],
        intermediate_size=v["intermediate_size"],
        num_hidden_layers=v["num_hidden_layers"],
        num_attention_heads=v["num_attention_heads"],
        num_key_value_heads=v["num_key_value_heads"],
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-6,
        use_sliding_window=False,
        sliding_window=32768,
        max_window_layers=v["num_hidden_layers"],
        initializer_range=INIT_STD,
        rope_parameters={"rope_type": "default", "mrope_section": list(v["mrope_section"]), "rope_theta": 1000000.0},
        bos_token_id=tok_ids["<|endoftext|>"],
        eos_token_id=tok_ids["<|im_end|>"],
        pad_token_id=None,
    )
    vision = dict(
        depth=v["vision_depth"],
        embed_dim=v["vision_embed_dim"],
        hidden_size=v["hidden_size"],  # merger output = text hidden
        hidden_act="quick_gelu",
        mlp_ratio=4,
        num_heads=v["vision_num_heads"],
        in_channels=3,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        initializer_range=INIT_STD,
    )
    return Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=tok_ids["<|image_pad|>"],
        video_token_id=tok_ids["<|video_pad|>"],
        vision_start_token_id=tok_ids["<|vision_start|>"],
        vision_end_token_id=tok_ids["<|vision_end|>"],
        tie_word_embeddings=False,
        bos_token_id=tok_ids["<|endoftext|>"],
        eos_token_id=tok_ids["<|im_end|>"],
    )


@torch.no_grad()
def randomize(model, n_tokens: int, seed: int) -> None:
    """Deterministic init that does not depend on HF's _init_weights details (which change
    between versions): every parameter, in sorted-name order, from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    for name, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.ndim == 1 and name.endswith(".weight"):
            # 1-D weights are the RMSNorm / LayerNorm gains: around 1, but not exactly 1, so that
            # a reimplementation that forgets a gain fails the parity checks.
            p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
        else:  # linear / conv / embedding weights and all biases
            p.copy_(INIT_STD * torch.randn(p.shape, generator=g))
    # Like the real checkpoints, the vocabulary is padded past the tokenizer; those rows are never
    # produced by the tokenizer. Zero their lm_head rows (logit exactly 0) so greedy decoding of a
    # random model practically never picks a token the tokenizer cannot decode.
    model.lm_head.weight[n_tokens:].zero_()


def save_flat_layout(out: Path, config, v: dict) -> None:
    """Rewrite config/processor files in the legacy flat layout of the Qwen2-VL-7B repository."""
    tc = config.text_config
    vc = config.vision_config
    flat = {
        "architectures": ["Qwen2VLForConditionalGeneration"],
        "attention_dropout": 0.0,
        "bos_token_id": config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "vision_start_token_id": config.vision_start_token_id,
        "vision_end_token_id": config.vision_end_token_id,
        "image_token_id": config.image_token_id,
        "video_token_id": config.video_token_id,
        "hidden_act": "silu",
        "hidden_size": tc.hidden_size,
        "initializer_range": INIT_STD,
        "intermediate_size": tc.intermediate_size,
        "max_position_embeddings": 32768,
        "max_window_layers": tc.num_hidden_layers,
        "model_type": "qwen2_vl",
        "num_attention_heads": tc.num_attention_heads,
        "num_hidden_layers": tc.num_hidden_layers,
        "num_key_value_heads": tc.num_key_value_heads,
        "rms_norm_eps": tc.rms_norm_eps,
        "rope_theta": 1000000.0,
        "sliding_window": 32768,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "use_sliding_window": False,
        "vision_config": {
            "depth": vc.depth,
            "embed_dim": vc.embed_dim,
            "mlp_ratio": vc.mlp_ratio,
            "num_heads": vc.num_heads,
            "in_chans": 3,
            "hidden_size": vc.hidden_size,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "spatial_patch_size": 14,
            "temporal_patch_size": 2,
        },
        "rope_scaling": {"type": "mrope", "mrope_section": list(v["mrope_section"])},
        "vocab_size": tc.vocab_size,
    }
    (out / "config.json").write_text(json.dumps(flat, indent=2) + "\n")
    pre = {
        "min_pixels": MIN_PIXELS,
        "max_pixels": MAX_PIXELS,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": CLIP_MEAN,
        "image_std": CLIP_STD,
        "image_processor_type": "Qwen2VLImageProcessor",
        "processor_class": "Qwen2VLProcessor",
    }
    (out / "preprocessor_config.json").write_text(json.dumps(pre, indent=2) + "\n")
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}, indent=2) + "\n")
    # The 5.x files that the 7B repository does not have.
    for name in ("processor_config.json", "chat_template.jinja", "video_preprocessor_config.json"):
        (out / name).unlink(missing_ok=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, type=Path, help="output Hugging Face checkpoint directory")
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    v = VARIANTS[args.variant]

    from transformers import (
        AutoProcessor,
        Qwen2Tokenizer,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)

    raw = train_tokenizer(v["bpe_vocab"])
    n_tokens = raw.get_vocab_size(with_added_tokens=True)
    assert n_tokens <= v["vocab_size"], (n_tokens, v["vocab_size"])
    tok_ids = {t: raw.token_to_id(t) for t in SPECIAL_TOKENS}
    tokenizer = Qwen2Tokenizer(
        tokenizer_object=raw,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",  # what an instruct model stops on (Qwen2-VL-Instruct does the same)
        pad_token="<|endoftext|>",
        extra_special_tokens={},
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config = build_config(v, tok_ids)
    model = Qwen2VLForConditionalGeneration(config).eval()
    randomize(model, n_tokens, args.seed)
    model.generation_config.bos_token_id = tok_ids["<|endoftext|>"]
    model.generation_config.eos_token_id = [tok_ids["<|im_end|>"], tok_ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = tok_ids["<|endoftext|>"]
    model.generation_config.do_sample = False

    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
        patch_size=14,
        temporal_patch_size=2,
        merge_size=2,
    )
    video_processor = Qwen2VLVideoProcessor(
        size={"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    )
    processor = Qwen2VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    if v["layout"] == "flat":
        save_flat_layout(out, config, v)

    # ---- self-check: transformers loads it back, and the weights round-trip exactly
    m2 = Qwen2VLForConditionalGeneration.from_pretrained(out, dtype=torch.float32).eval()
    p2 = AutoProcessor.from_pretrained(out)
    sd1, sd2 = model.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys()
    for k in sd1:
        assert torch.equal(sd1[k], sd2[k]), k
    tc = m2.config.text_config
    assert tc.hidden_size == v["hidden_size"] and tc.num_key_value_heads == v["num_key_value_heads"]
    assert list(tc.rope_parameters["mrope_section"]) == v["mrope_section"], tc.rope_parameters
    assert p2.image_processor.size["longest_edge"] == MAX_PIXELS, p2.image_processor.size
    assert p2.image_processor.size["shortest_edge"] == MIN_PIXELS, p2.image_processor.size
    assert p2.image_token_id == tok_ids["<|image_pad|>"]
    ids = p2.tokenizer("92 0 0 ; Shift W ; Shift W ; ; ; ;")["input_ids"]
    print(f"[make_test_model] {args.variant}: {out}")
    print(f"  tokenizer: {n_tokens} tokens (BPE {v['bpe_vocab']} + {len(SPECIAL_TOKENS)} special), model vocab {v['vocab_size']}")
    print(f"  special ids: {tok_ids}")
    print(f"  action '92 0 0 ; Shift W ; Shift W ; ; ; ;' -> {[p2.tokenizer.decode([i]) for i in ids]}")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"  parameters: {n_params} ({n_params * 4 / 1e6:.2f} MB fp32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
