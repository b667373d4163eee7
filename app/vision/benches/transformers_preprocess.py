#!/usr/bin/env python3
"""Times transformers 5.23's Qwen2VLImageProcessor on the 1280x720 golden frame.

The reference figure for `cargo bench -p lumine-vision --bench preprocess`
("preprocess_into 1280x720"). Run from the repository root:

    .venv-export/bin/python app/vision/benches/transformers_preprocess.py [--runs 30] [--threads 2]

Same work as the Rust side: PIL RGB image in, `pixel_values` [4784, 1176] f32 +
`image_grid_thw` out (torchvision backend, CPU, 7B min/max pixels).
"""

import argparse
import pathlib
import statistics
import time

import numpy as np
import torch
from PIL import Image
from transformers import Qwen2VLImageProcessor

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "tests" / "golden" / "frame_1280x720.png"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--input", choices=["pil", "numpy"], default="pil")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    pil = Image.open(GOLDEN).convert("RGB")
    image = pil if args.input == "pil" else np.array(pil)
    proc = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)

    for _ in range(3):  # warm-up (lazy imports, allocator)
        out = proc(images=[image], return_tensors="pt")
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        out = proc(images=[image], return_tensors="pt")
        times.append((time.perf_counter() - t0) * 1e3)
    assert tuple(out["pixel_values"].shape) == (4784, 1176)
    print(
        f"transformers Qwen2VLImageProcessor 1280x720 ({args.input}, {args.threads} torch threads, "
        f"{args.runs} runs): median {statistics.median(times):.2f} ms, "
        f"min {min(times):.2f} ms, mean {statistics.mean(times):.2f} ms"
    )


if __name__ == "__main__":
    main()
