#!/usr/bin/env python3
"""Regenerates the lumine-vision golden files from transformers' Qwen2VLImageProcessor.

Run from the repository root with the export environment (scripts/setup-export-env):

    .venv-export/bin/python app/vision/tests/golden/make_golden.py

Pinned stack (QWEN2VL.md): torch 2.15, torchvision 0.29.2, transformers 5.23.0, pillow 13.0.0.
The processor is the default torchvision backend on CPU (on CUDA torchvision resizes in f32 and
the values differ, QWEN2VL.md §2).

For every case this writes `<name>.png` (the RGB8 input, deterministic: seeded gradients + hard-edged
shapes + noise) and `<name>.json` with:
  - the processor config (min/max pixels, patch/merge/temporal sizes, mean/std),
  - the resized size and `image_grid_thw`,
  - sha256 of torchvision's uint8 resize output (the processor's exact call, on the uint8 CHW tensor),
    hashed as packed HWC RGB8 bytes, i.e. the layout of `lumine_vision::RgbImage::data`,
  - `pixel_values` shape, sha256 of its little-endian f32 bytes (row-major), its first 64 values and
    every 997th value (flat index) for diagnosing a mismatch.
The script checks itself: the processor's pixel_values must equal (bit for bit) a numpy
normalise + patchify of the torchvision uint8 resize, using QWEN2VL.md §2-3's formulas.
"""

import hashlib
import json
import math
import pathlib
import sys

import numpy as np
import PIL
import torch
import torchvision
import transformers
from PIL import Image
from torchvision.transforms.v2 import functional as tvF
from transformers import Qwen2VLImageProcessor

HERE = pathlib.Path(__file__).resolve().parent

DEFAULT = dict(
    min_pixels=3136,
    max_pixels=12845056,
    patch_size=14,
    temporal_patch_size=2,
    merge_size=2,
    image_mean=[0.48145466, 0.4578275, 0.40821073],
    image_std=[0.26862954, 0.26130258, 0.27577711],
)

# name, width, height, seed, config overrides
CASES = [
    # The product's frame: 720->728 and 1280->1288, both axes upscaled (p = 14).
    ("frame_1280x720", 1280, 720, 1, {}),
    ("frame_640x360", 640, 360, 2, {}),
    # Height rounds down (257->252, p = 15), width up (333->336).
    ("odd_333x257", 333, 257, 3, {}),
    # Both axes mildly downscaled: 173->168, 119->112.
    ("small_173x119", 173, 119, 4, {}),
    # Strong downscale through the max_pixels branch (max_pixels lowered to 256 tokens' worth).
    ("down_1000x750_max200704", 1000, 750, 5, {"max_pixels": 200704}),
    # Stronger still, both axes ~x4.5 (one padded tap count well above the upscale's 4).
    ("down_900x700_max37632", 900, 700, 6, {"max_pixels": 37632}),
    # Only the height changes (300->308): the width pass is skipped.
    ("hskip_336x300", 336, 300, 7, {}),
    # Already a multiple of 28 and within bounds: no resize at all.
    ("noresize_280x224", 280, 224, 8, {}),
]


def synth(width: int, height: int, seed: int) -> np.ndarray:
    """Gradients + hard-edged shapes (bicubic overshoot, clamping) + noise, as HWC uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.empty((height, width, 3), np.float64)
    img[..., 0] = 255.0 * x / max(width - 1, 1)
    img[..., 1] = 255.0 * y / max(height - 1, 1)
    img[..., 2] = 127.5 + 127.5 * np.sin((x + 2 * y) / (7.0 + seed))
    for _ in range(12):
        color = rng.choice([0.0, 255.0, rng.uniform(0, 255)], size=3)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(2, width / 5), rng.uniform(2, height / 5)
        if rng.random() < 0.5:
            mask = (np.abs(x - cx) < rx) & (np.abs(y - cy) < ry)
        else:
            mask = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 < 1.0
        img[mask] = color
    # One patch of full-range noise and a band of mild noise.
    nw, nh = max(width // 6, 1), max(height // 6, 1)
    ox, oy = rng.integers(0, width - nw + 1), rng.integers(0, height - nh + 1)
    img[oy : oy + nh, ox : ox + nw] = rng.integers(0, 256, size=(nh, nw, 3))
    band = slice(height // 2, height // 2 + max(height // 8, 1))
    img[band] += rng.normal(0.0, 6.0, size=img[band].shape)
    # 1-pixel checkerboard strip: the highest frequency the resize can see.
    strip = slice(0, max(height // 20, 1))
    checker = ((x[strip].astype(int) + y[strip].astype(int)) % 2) * 255.0
    img[strip, :, 1] = checker
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def numpy_pixel_values(resized_chw: np.ndarray, cfg: dict) -> np.ndarray:
    """QWEN2VL.md §2.3 + §3: fused normalise in f32, then patchify with the closed-form index."""
    m = (np.array(cfg["image_mean"], np.float32) * np.float32(255.0)).astype(np.float32)
    s = (np.array(cfg["image_std"], np.float32) * np.float32(255.0)).astype(np.float32)
    x = (resized_chw.astype(np.float32) - m[:, None, None]) / s[:, None, None]
    c, h, w = x.shape
    p, mg, t = cfg["patch_size"], cfg["merge_size"], cfg["temporal_patch_size"]
    gh, gw = h // p, w // p
    x = x.reshape(c, gh // mg, mg, p, gw // mg, mg, p)
    x = x.transpose(1, 4, 2, 5, 0, 3, 6)  # bh, bw, mh, mw, c, y, x
    x = np.repeat(x[:, :, :, :, :, None], t, axis=5)  # bh, bw, mh, mw, c, t, y, x
    return np.ascontiguousarray(x.reshape(gh * gw, c * t * p * p))


def main() -> int:
    torch.set_num_threads(1)
    versions = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
        "pillow": PIL.__version__,
        "numpy": np.__version__,
    }
    print("versions:", versions)
    for name, width, height, seed, overrides in CASES:
        cfg = dict(DEFAULT, **overrides)
        png = HERE / f"{name}.png"
        Image.fromarray(synth(width, height, seed), "RGB").save(png, optimize=True)
        # Read back what the Rust test will decode.
        pil = Image.open(png)
        pil.load()
        assert pil.mode == "RGB" and pil.size == (width, height)

        proc = Qwen2VLImageProcessor(
            min_pixels=cfg["min_pixels"],
            max_pixels=cfg["max_pixels"],
            patch_size=cfg["patch_size"],
            temporal_patch_size=cfg["temporal_patch_size"],
            merge_size=cfg["merge_size"],
            image_mean=cfg["image_mean"],
            image_std=cfg["image_std"],
        )
        out = proc(images=[pil], return_tensors="pt")
        pv = out["pixel_values"]
        assert pv.dtype == torch.float32 and pv.device.type == "cpu"
        pv = pv.numpy()
        grid = out["image_grid_thw"].tolist()[0]

        # The processor's resize, on its own: uint8 CHW tensor, size from smart_resize.
        rh, rw = transformers.models.qwen2_vl.image_processing_qwen2_vl.smart_resize(
            height,
            width,
            factor=cfg["patch_size"] * cfg["merge_size"],
            min_pixels=cfg["min_pixels"],
            max_pixels=cfg["max_pixels"],
        )
        chw = torch.from_numpy(np.array(pil)).movedim(-1, 0).contiguous()
        if (rh, rw) == (height, width):
            resized = chw  # torchvision returns the input untouched
        else:
            resized = tvF.resize(
                chw,
                [rh, rw],
                interpolation=tvF.InterpolationMode.BICUBIC,
                antialias=True,
            )
        assert resized.dtype == torch.uint8 and tuple(resized.shape) == (3, rh, rw)
        resized_hwc = np.ascontiguousarray(resized.movedim(0, -1).numpy())

        # Self-check: the processor == numpy normalise + patchify of that resize, bit for bit.
        mine = numpy_pixel_values(resized.numpy(), cfg)
        assert mine.shape == pv.shape, (mine.shape, pv.shape)
        assert mine.tobytes() == pv.tobytes(), f"{name}: numpy recomposition differs"

        flat = pv.reshape(-1)
        record = {
            "name": name,
            "png": png.name,
            "width": width,
            "height": height,
            "seed": seed,
            "config": cfg,
            "resized_height": rh,
            "resized_width": rw,
            "image_grid_thw": grid,
            "num_image_tokens": math.prod(grid) // cfg["merge_size"] ** 2,
            "resized_u8_sha256": sha256(resized_hwc.tobytes()),
            "pixel_values_shape": list(pv.shape),
            "pixel_values_sha256": sha256(flat.astype("<f4").tobytes()),
            "first_values": [float(v) for v in flat[:64]],
            "sample_stride": 997,
            "sampled_values": [float(v) for v in flat[::997]],
            "versions": versions,
        }
        (HERE / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        print(f"{name}: {width}x{height} -> {rw}x{rh}, grid {grid}, {png.stat().st_size} B png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
