#!/usr/bin/env python3
"""Export a Hugging Face Qwen2-VL checkpoint to a Lumine model directory (three ONNX graphs +
tokenizer + preprocessing + manifest), then check the export against transformers.

    python models/export/export.py --hf HF_DIR --out MODEL_DIR [--opset 18] [--frame 1280x720]
                                   [--name NAME] [--mouse-scale 5,4] [--skip-check] [--partitions N]

HF_DIR may use the flat legacy config layout (public Qwen2-VL-2B/7B repositories) or the nested
transformers 5.x layout. Output (MODEL_DIR):

  vision_encoder.onnx        pixel_values f32 [patches, 588] (temporal kernel folded), grid_thw i64 [1, 3]
                             -> image_features f32 [patches/4, hidden]      (ONE image per call)
  embed_tokens.onnx          input_ids i64 [B, S] -> inputs_embeds f32 [B, S, hidden]
  decoder_model_merged.onnx  inputs_embeds, attention_mask i64 [B, past+S], position_ids i64 [3, B, S],
                             past_key_values.{i}.key/.value f32 [B, kv_heads, past, head_dim]
                             -> logits f32 [B, S, vocab], present.{i}.key/.value [B, kv_heads, past+S, head_dim]
  tokenizer.json, preprocessor.json, keys.ron, manifest.ron

With --partitions N > 1 (N divides num_key_value_heads) the decoder is written as N tensor-parallel
rank graphs decoder.rank{r}.onnx instead (partition.py: heads and MLP units split Megatron style,
ai.lumine.AllReduceSum after o_proj and down_proj, lm_head on rank 0), recorded in manifest.ron as
`partitions: N` and `partition: Some((ranks: [...], ...))`; the check runs the N ranks merged
into one stock ONNX graph (each reduction a Sum over the ranks).

Large checkpoints (> ~1.5 GB of fp32 weights in a graph) are written with ONNX external data
(GRAPH.onnx.data next to GRAPH.onnx); fp32 7B needs ~35 GB of RAM to export and check.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lumine_prompts import INSTRUCTION_PROMPT, PROMPT_SETS  # noqa: E402
from qwen2vl_config import Qwen2VLFiles, read_config  # noqa: E402
from qwen2vl_modules import Decoder, TokenEmbedding, VisionEncoder  # noqa: E402

REPO = HERE.parent.parent
DEFAULT_KEYS = REPO / "app" / "action" / "data" / "default_keys.ron"
LUMINE_TOKENS = [
    ("endoftext", "<|endoftext|>"),
    ("im_start", "<|im_start|>"),
    ("im_end", "<|im_end|>"),
    ("vision_start", "<|vision_start|>"),
    ("vision_end", "<|vision_end|>"),
    ("image_pad", "<|image_pad|>"),
    ("video_pad", "<|video_pad|>"),
    ("thought_start", "<|thought_start|>"),
    ("thought_end", "<|thought_end|>"),
    ("action_start", "<|action_start|>"),
    ("action_end", "<|action_end|>"),
]
EXTERNAL_DATA_BYTES = 1_500_000_000  # protobuf's hard limit is 2 GiB per file
EXTERNAL_DATA = "auto"  # set from --external-data


# ---------------------------------------------------------------------------------------------
# ONNX export
# ---------------------------------------------------------------------------------------------


def _param_bytes(module: torch.nn.Module) -> int:
    seen = set()
    total = 0
    for p in list(module.parameters()) + list(module.buffers()):
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    return total


def rename_dims(model_proto, mapping: dict[str, str]) -> None:
    """Give torch.export's generated symbol names (s53, 4*windows, ...) readable ONNX dim_params."""
    import onnx  # noqa: F401

    g = model_proto.graph
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in mapping:
                d.dim_param = mapping[d.dim_param]


def onnx_export(module, args, path: Path, input_names, output_names, dynamic_shapes, opset: int,
                dim_names: dict[tuple[str, int], str] | None = None, custom_translation_table=None) -> None:
    external = EXTERNAL_DATA == "always" or (EXTERNAL_DATA == "auto" and _param_bytes(module) > EXTERNAL_DATA_BYTES)
    t0 = time.time()
    with torch.no_grad():
        prog = torch.onnx.export(
            module,
            args,
            None,
            input_names=input_names,
            output_names=output_names,
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            dynamo=True,
            optimize=True,
            custom_translation_table=custom_translation_table,
        )
    path.unlink(missing_ok=True)
    Path(str(path) + ".data").unlink(missing_ok=True)
    prog.save(str(path), external_data=external)
    if dim_names:
        import onnx

        # Reload without the weights (external tensors keep pointing at GRAPH.onnx.data) and map
        # (tensor, axis) -> readable name through the symbol currently on that axis.
        proto = onnx.load(str(path), load_external_data=False)
        vis = {v.name: v for v in list(proto.graph.input) + list(proto.graph.output)}
        mapping = {}
        for (tensor, axis), new in dim_names.items():
            d = vis[tensor].type.tensor_type.shape.dim[axis]
            if d.HasField("dim_param"):
                mapping[d.dim_param] = new
        rename_dims(proto, mapping)
        onnx.save(proto, str(path))
    got_in = [i.name for i in prog.model.graph.inputs]
    got_out = [o.name for o in prog.model.graph.outputs]
    if got_in != list(input_names) or got_out != list(output_names):
        raise RuntimeError(f"{path.name}: exported names {got_in} -> {got_out}, wanted {input_names} -> {output_names}")
    size = path.stat().st_size + (Path(str(path) + ".data").stat().st_size if external else 0)
    print(f"[export] {path.name}: {size / 1e6:.2f} MB{' (external data)' if external else ''} in {time.time() - t0:.1f}s")


def export_graphs(model, cfg: Qwen2VLFiles, out: Path, opset: int, partitions: int = 1) -> None:
    from torch.export import Dim

    t, v = cfg.text, cfg.vision
    # ---- vision: example 8x12 patches (not a square, gh != gw, so h/w cannot be confused).
    venc = VisionEncoder(model.model.visual, cfg).eval()
    gh, gw = 8, 12
    pv = torch.randn(gh * gw, v.in_channels * v.patch_size**2)  # temporal kernel folded (VisionEncoder)
    grid = torch.tensor([[1, gh, gw]], dtype=torch.int64)
    # patches is always a multiple of merge^2 (= 4): declare it so, the merger reshape needs it.
    windows = Dim("windows", min=1)
    m2 = v.spatial_merge_size**2
    onnx_export(
        venc, (pv, grid), out / "vision_encoder.onnx",
        ["pixel_values", "grid_thw"], ["image_features"],
        ({0: m2 * windows}, None), opset,
        dim_names={("pixel_values", 0): "patches", ("image_features", 0): "image_tokens"},
    )

    # ---- token embedding
    emb = TokenEmbedding(model.model.language_model.embed_tokens).eval()
    onnx_export(
        emb, (torch.zeros(2, 5, dtype=torch.int64),), out / "embed_tokens.onnx",
        ["input_ids"], ["inputs_embeds"], ({0: Dim("batch"), 1: Dim("sequence")},), opset,
    )

    # ---- decoder: batch 2, sequence 5, past 3 so no dimension is 0 or 1 at export time
    # (torch.export would specialise those); the graph is checked with past 0 / batch 1 later.
    b, s, p = 2, 5, 3
    batch, seq, past = Dim("batch"), Dim("sequence"), Dim("past_sequence")
    ex = [torch.randn(b, s, t.hidden_size), torch.ones(b, p + s, dtype=torch.int64),
          torch.arange(p, p + s).expand(3, b, s).contiguous()]
    names_in = ["inputs_embeds", "attention_mask", "position_ids"]
    names_out = ["logits"]
    # attention_mask's length is past + sequence; torch.export cannot name a sum of two dims, so
    # let it infer that relation (Dim.AUTO).
    shapes = [{0: batch, 1: seq}, {0: batch, 1: Dim.AUTO}, {1: batch, 2: seq}]
    past_shapes = []
    kv_heads = t.num_key_value_heads // partitions
    for i in range(t.num_layers):
        for kind in ("key", "value"):
            ex.append(torch.randn(b, kv_heads, p, t.head_dim))
            names_in.append(f"past_key_values.{i}.{kind}")
            names_out.append(f"present.{i}.{kind}")
            past_shapes.append({0: batch, 2: past})
    # forward(inputs_embeds, attention_mask, position_ids, *past): *past is one tuple for torch.export.
    dims = {("attention_mask", 1): "past_sequence + sequence"}
    if partitions == 1:
        dec = Decoder(model.model.language_model, model.lm_head, cfg).eval()
        onnx_export(dec, tuple(ex), out / "decoder_model_merged.onnx", names_in, names_out,
                    (*shapes, tuple(past_shapes)), opset, dim_names=dims)
        return
    from partition import RankDecoder, rank_file, translation_table

    table = translation_table()
    for r in range(partitions):
        dec = RankDecoder(model.model.language_model, model.lm_head, cfg, r, partitions).eval()
        outs = names_out if r == 0 else ["hidden_states", *names_out[1:]]
        onnx_export(dec, tuple(ex), out / rank_file(r), names_in, outs, (*shapes, tuple(past_shapes)), opset,
                    dim_names=dims, custom_translation_table=table)


# ---------------------------------------------------------------------------------------------
# Side files
# ---------------------------------------------------------------------------------------------


def ron_str(s: str) -> str:
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def ron_float(x: float) -> str:
    # repr gives the shortest round-tripping decimal; RON needs a '.' or exponent-free form.
    r = repr(float(x))
    if "e" in r or "E" in r:
        r = np.format_float_positional(float(x), unique=True, trim="0")
    if "." not in r:
        r += ".0"
    return r


def token_ids(tokenizer_json: Path) -> dict[str, int]:
    tj = json.loads(tokenizer_json.read_text())
    table = {t["content"]: t["id"] for t in tj.get("added_tokens", [])}
    vocab = tj.get("model", {}).get("vocab", {})
    ids = {}
    missing = []
    for field, tok in LUMINE_TOKENS:
        tid = table.get(tok, vocab.get(tok) if isinstance(vocab, dict) else None)
        if tid is None:
            missing.append(tok)
        else:
            ids[field] = int(tid)
    if missing:
        raise SystemExit(
            f"tokenizer.json lacks the Lumine special tokens {missing}: a Lumine policy checkpoint must "
            "define them (base Qwen2-VL has no thought/action markers)")
    return ids


def write_manifest(path: Path, name: str, cfg: Qwen2VLFiles, ids: dict[str, int], frame: tuple[int, int],
                   mouse: tuple[float, float], keys_file: str, partitions: int = 1, prompts: str = "default",
                   history: int | None = None) -> None:
    t, v, pp = cfg.text, cfg.vision, cfg.preprocess
    instruction_prompt, reasoning_prompt = PROMPT_SETS[prompts]
    from partition import DOMAIN, OP, rank_file

    decoder = "decoder_model_merged.onnx" if partitions == 1 else rank_file(0)
    floats = lambda xs: "[" + ", ".join(ron_float(x) for x in xs) + "]"  # noqa: E731
    ints = lambda xs: "[" + ", ".join(str(int(x)) for x in xs) + "]"  # noqa: E731
    lines = [
        "// Lumine model manifest, written by models/export/export.py.",
        "(",
        "  format_version: 1,",
        f"  name: {ron_str(name)},",
        '  architecture: "qwen2_vl",',
        f"  text: (hidden_size: {t.hidden_size}, num_layers: {t.num_layers}, num_attention_heads: {t.num_attention_heads}, "
        f"num_key_value_heads: {t.num_key_value_heads}, head_dim: {t.head_dim}, intermediate_size: {t.intermediate_size}, "
        f"vocab_size: {t.vocab_size}, rms_norm_eps: {ron_float(t.rms_norm_eps)}, rope_theta: {ron_float(t.rope_theta)}, "
        f"mrope_section: {ints(t.mrope_section)}),",
        f"  vision: (depth: {v.depth}, embed_dim: {v.embed_dim}, num_heads: {v.num_heads}, patch_size: {v.patch_size}, "
        f"temporal_patch_size: {v.temporal_patch_size}, spatial_merge_size: {v.spatial_merge_size}, "
        f"out_hidden_size: {v.out_hidden_size}, temporal_folded: true),",
        f"  preprocess: (min_pixels: {pp.min_pixels}, max_pixels: {pp.max_pixels}, image_mean: {floats(pp.image_mean)}, "
        f"image_std: {floats(pp.image_std)}),",
        f"  frame: (width: {frame[0]}, height: {frame[1]}),",
        "  tokens: (" + ", ".join(f"{k}: {ids[k]}" for k, _ in LUMINE_TOKENS) + "),",
        '  graphs: (vision_encoder: "vision_encoder.onnx", embed_tokens: "embed_tokens.onnx", '
        f'decoder: {ron_str(decoder)}),',
        '  tokenizer: "tokenizer.json",',
        f"  key_vocabulary: {ron_str(keys_file)},",
        f"  mouse_scale: (x: {ron_float(mouse[0])}, y: {ron_float(mouse[1])}),",
        f"  prompts: (instruction: {ron_str(instruction_prompt)}, reasoning: {ron_str(reasoning_prompt)}),",
        f"  partitions: {partitions},",
    ]
    if partitions > 1:
        ranks = ", ".join(ron_str(rank_file(r)) for r in range(partitions))
        lines.append(f'  partition: Some((ranks: [{ranks}], reduce_op: "{DOMAIN}.{OP}", lm_head_rank: 0)),')
    if history is not None:
        lines.append(f"  history_frames: Some({history}),")
    lines.append(")")
    path.write_text("\n".join(lines) + "\n")


def write_side_files(hf: Path, out: Path, cfg: Qwen2VLFiles, name: str, frame, mouse, partitions: int = 1,
                     prompts: str = "default", history: int | None = None) -> None:
    shutil.copyfile(hf / "tokenizer.json", out / "tokenizer.json")
    ids = token_ids(out / "tokenizer.json")
    if ids["image_pad"] != cfg.ids.image_token_id or ids["video_pad"] != cfg.ids.video_token_id:
        raise SystemExit(f"config image/video token ids {cfg.ids} disagree with tokenizer.json {ids}")
    pp = cfg.preprocess
    pre = {
        "min_pixels": pp.min_pixels,
        "max_pixels": pp.max_pixels,
        "patch_size": pp.patch_size,
        "temporal_patch_size": pp.temporal_patch_size,
        "merge_size": pp.merge_size,
        "image_mean": pp.image_mean,
        "image_std": pp.image_std,
        "rescale_factor": pp.rescale_factor,
        "resample": pp.resample,  # 3 = bicubic (antialiased, uint8 kernel: QWEN2VL.md section 2)
    }
    (out / "preprocessor.json").write_text(json.dumps(pre, indent=2) + "\n")
    if DEFAULT_KEYS.exists():
        shutil.copyfile(DEFAULT_KEYS, out / "keys.ron")
    else:
        print(f"[export] WARNING: {DEFAULT_KEYS} does not exist yet; keys.ron not written")
    write_manifest(out / "manifest.ron", name, cfg, ids, frame, mouse, "keys.ron", partitions, prompts, history)


# ---------------------------------------------------------------------------------------------
# Check against transformers
# ---------------------------------------------------------------------------------------------


def check_against_hf(model, hf: Path, out: Path, tol: float, steps: int = 5) -> float:
    from PIL import Image
    from transformers import AutoProcessor

    from onnx_runner import OnnxQwen2VL, rope_index

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # A random odd-sized picture (gets resized: 250x190 -> 252x196) with a few flat regions so the
    # features are not pure noise.
    img = rng.integers(0, 256, size=(190, 250, 3), dtype=np.uint8)
    img[20:90, 30:140] = (200, 40, 30)
    img[120:, 160:] = (20, 60, 220)
    messages = [
        {"role": "system", "content": INSTRUCTION_PROMPT},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Walk to the door and open it."}]},
    ]
    proc = AutoProcessor.from_pretrained(hf)
    text = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = proc(text=[text], images=[Image.fromarray(img)], return_tensors="pt")
    ids = inputs["input_ids"][0].numpy()
    pv = inputs["pixel_values"].numpy()
    grid = inputs["image_grid_thw"].numpy()

    rt = OnnxQwen2VL(out, threads=2)
    worst = 0.0

    def report(what, diff, ref=None):
        # float32 error grows with the values' magnitude: a trained policy's confident logits
        # (tens) carry more absolute error than a fresh model's, for the same arithmetic. So
        # the difference is taken relative to the reference's scale once that exceeds 1.
        nonlocal worst
        scale = 1.0 if ref is None else max(1.0, float(np.abs(ref).max()))
        d = float(np.abs(diff).max()) / scale
        worst = max(worst, d)
        print(f"[check] {what:<52} max |diff| = {d * scale:.3e} (scale {scale:.3g}: {d:.3e})")

    with torch.no_grad():
        hf_feat = model.model.get_image_features(inputs["pixel_values"], inputs["image_grid_thw"]).pooler_output[0].numpy()
        hf_logits = model(**inputs).logits[0].numpy()
    report(f"image features {tuple(hf_feat.shape)}", rt.encode_image(pv, grid[0]) - hf_feat, hf_feat)

    # Prefill, all positions.
    pos, delta = rope_index(ids, grid, rt.tokens["image_pad"])
    emb = rt.prompt_embeds(ids, pv, grid)
    s = len(ids)
    logits, _ = rt.decode(emb, np.ones((1, s), np.int64), pos[:, None], rt.empty_past())
    report(f"prefill logits, all {s} positions (past 0, batch 1)", logits[0] - hf_logits, hf_logits)

    # Greedy decode vs generate (exactly `steps` tokens: EOS disabled).
    gc = copy.deepcopy(model.generation_config)
    gc.eos_token_id = None
    gc.do_sample = False
    gc.max_new_tokens = steps
    gc.min_new_tokens = None
    gc.output_logits = True
    gc.return_dict_in_generate = True
    with torch.no_grad():
        g = model.generate(**inputs, generation_config=gc)
    hf_tokens = g.sequences[0, s:].tolist()
    hf_steps = torch.stack(g.logits)[:, 0].numpy()
    tokens, step_logits, rt_delta, _, verify = rt.greedy(ids, pv, grid, max_new_tokens=steps, verify_chunk=3)
    assert rt_delta == delta
    # generate() can still stop early on a stop token of the model's own config; compare the
    # steps both made (the runner never stops early).
    n = min(len(step_logits), len(hf_steps))
    if n < steps:
        print(f"[check] transformers stopped after {n} of {steps} steps; comparing those")
    tokens = tokens[:n]
    report(f"decode logits, {n} steps (S=1, positions S+k+delta)", step_logits[:n] - hf_steps[:n], hf_steps[:n])
    if tokens != hf_tokens[:n]:
        print(f"[check] greedy tokens differ: onnx {tokens} vs hf {hf_tokens}")
        worst = math.inf
    report("multi-token verify (S=3 on past) vs one-by-one", np.float32(verify))  # ONNX against itself: absolute

    # attention_mask zeros mask keys. Batch 2: row 1 is the prompt left-padded with 3 junk rows
    # (large random embeddings) masked out; row 0 is the prompt prefixed with a copy of its first 3
    # rows, masked out the same way. Both must give HF's logits on the real prompt positions.
    pad = 3
    junk = np.random.default_rng(1).standard_normal((1, pad, emb.shape[2])).astype(np.float32) * 5
    emb2 = np.concatenate([np.concatenate([emb[:, :pad], emb], axis=1), np.concatenate([junk, emb], axis=1)])
    mask2 = np.ones((2, s + pad), np.int64)
    mask2[:, :pad] = 0
    pos2 = np.stack([np.concatenate([pos[:, :pad], pos], axis=1),
                     np.concatenate([np.zeros((3, pad), np.int64), pos], axis=1)], axis=1)  # [3, 2, pad+S]
    l2, _ = rt.decode(emb2, mask2, pos2, rt.empty_past(batch=2))
    report("batch 2, left padding masked by attention_mask", l2[:, pad:] - hf_logits[None], hf_logits)

    print(f"[check] greedy tokens (onnx == hf): {tokens}")
    print(f"[check] MAX DIFF = {worst:.3e}, relative to the values' scale above 1 (tolerance {tol:g})")
    return worst


# ---------------------------------------------------------------------------------------------


def parse_frame(s: str) -> tuple[int, int]:
    w, h = s.lower().split("x")
    return int(w), int(h)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hf", required=True, type=Path, help="Hugging Face Qwen2-VL checkpoint directory")
    ap.add_argument("--out", required=True, type=Path, help="model directory to write")
    ap.add_argument("--opset", type=int, default=18)
    ap.add_argument("--frame", type=parse_frame, default=(1280, 720), help="game frame size WxH (default 1280x720)")
    ap.add_argument("--name", default=None, help="manifest name (default: lumine-<out dir name>)")
    ap.add_argument("--mouse-scale", default="5,4", help="pixels per mouse unit X,Y (default 5,4)")
    ap.add_argument("--external-data", choices=["auto", "always", "never"], default="auto",
                    help="write weights to GRAPH.onnx.data (auto: only for graphs over 1.5 GB)")
    ap.add_argument("--skip-check", action="store_true", help="do not compare with transformers (huge models)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--prompts", choices=sorted(PROMPT_SETS), default="default",
                    help="system prompts written to the manifest (lumine_prompts.py; 'arena': the compact set "
                         "the project's trained policies use)")
    ap.add_argument("--partitions", type=int, default=1,
                    help="tensor-parallel ranks of the decoder (must divide num_key_value_heads; default 1)")
    ap.add_argument("--history", type=int, default=None,
                    help="frames of context the model was trained with (manifest history_frames: the runtime "
                         "never shows it more); default: not written, the runtime's setting applies")
    args = ap.parse_args()

    from transformers import Qwen2VLForConditionalGeneration

    global EXTERNAL_DATA
    EXTERNAL_DATA = args.external_data
    torch.manual_seed(0)
    hf: Path = args.hf
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    cfg = read_config(hf)
    print(f"[export] {hf}: {cfg.layout} layout, text {cfg.text}, vision {cfg.vision}")

    model = Qwen2VLForConditionalGeneration.from_pretrained(hf, dtype=torch.float32).eval()
    # Our own parse must agree with transformers' (the Rust loader mirrors ours).
    tc = model.config.text_config
    assert tc.hidden_size == cfg.text.hidden_size and tc.num_hidden_layers == cfg.text.num_layers
    assert tc.num_key_value_heads == cfg.text.num_key_value_heads and tc.vocab_size == cfg.text.vocab_size
    assert list(tc.rope_parameters["mrope_section"]) == cfg.text.mrope_section
    assert float(tc.rope_parameters["rope_theta"]) == cfg.text.rope_theta
    assert model.config.vision_config.embed_dim == cfg.vision.embed_dim
    if cfg.tie_word_embeddings:
        print("[export] note: tie_word_embeddings=true (lm_head shares the embedding matrix)")

    kv = cfg.text.num_key_value_heads
    if args.partitions < 1 or kv % args.partitions:
        ap.error(f"--partitions {args.partitions} must divide num_key_value_heads {kv}")
    # Stale graphs of another partitioning would be confusing next to the new ones.
    for stale in ["decoder_model_merged.onnx", *(p.name for p in out.glob("decoder.rank*.onnx"))]:
        (out / stale).unlink(missing_ok=True)
        Path(str(out / stale) + ".data").unlink(missing_ok=True)
    export_graphs(model, cfg, out, args.opset, args.partitions)
    name = args.name or (out.name if out.name.startswith("lumine") else f"lumine-{out.name}")
    mx, my = (float(x) for x in args.mouse_scale.split(","))
    write_side_files(hf, out, cfg, name, args.frame, (mx, my), args.partitions, args.prompts, args.history)

    if args.skip_check:
        print("[export] check against transformers skipped (--skip-check)")
        return 0
    worst = check_against_hf(model, hf, out, args.tolerance)
    if not worst <= args.tolerance:
        print(f"[export] FAILED: max difference {worst:.3e} (relative to scale) > {args.tolerance:g}")
        return 1
    print(f"[export] OK: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
