"""Reference runner for an exported Lumine model directory: numpy + onnxruntime only.

This is what the Rust engine is held to (check_onnx.py drives it against the golden files):

1. every image goes through ``vision_encoder.onnx`` on its own (one image per call);
2. ``embed_tokens.onnx`` embeds the prompt; the rows whose id is ``<|image_pad|>`` are replaced,
   in order, by the concatenated image features;
3. M-RoPE prefill positions come from ``rope_index`` (QWEN2VL.md section 5), and the decode
   position of the k-th fed-back token is ``S + k + rope_delta`` on all three rows;
4. ``decoder_model_merged.onnx`` runs the prefill with empty past (past length 0), then one token
   at a time (S = 1) with the present K/V fed back as past; several tokens at once (S > 1 with
   past > 0) give the same logits as feeding them one by one.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnxruntime as ort


def read_manifest_tokens(model_dir: Path) -> dict[str, int]:
    """The `tokens: (...)` table of manifest.ron (a regex is enough for our own writer's output)."""
    text = (Path(model_dir) / "manifest.ron").read_text()
    block = re.search(r"tokens:\s*\((.*?)\)", text, re.S).group(1)
    return {k: int(v) for k, v in re.findall(r"(\w+):\s*(-?\d+)", block)}


def read_manifest_ranks(model_dir: Path) -> list[str]:
    """The rank graph files of a partitioned export (`partition: Some((ranks: [...]...`), else []."""
    text = (Path(model_dir) / "manifest.ron").read_text()
    m = re.search(r"partition:\s*Some\(\(\s*ranks:\s*\[(.*?)\]", text, re.S)
    return re.findall(r'"([^"]+)"', m.group(1)) if m else []


def fold_still(pixel_values: np.ndarray, cols) -> np.ndarray:
    """The processor's rows ([C, T, P, P] per patch: a still frame copied T times) reduced to the
    `cols` columns a graph with a folded temporal kernel takes (`temporal_folded: true`, [C, P, P]:
    the t = 0 copy). Rows already `cols` wide, or a graph of unknown width, are left as they are."""
    if not isinstance(cols, int) or pixel_values.shape[1] == cols:
        return pixel_values
    n, full = pixel_values.shape
    if full % cols or cols % 3:
        raise ValueError(f"pixel_values have {full} columns; the vision graph takes {cols}")
    per_t = pixel_values.reshape(n, 3, full // cols, cols // 3)
    if not np.array_equal(per_t[:, :, 0], per_t[:, :, -1]):
        raise ValueError("pixel_values are not a still frame (temporal copies differ)")
    return np.ascontiguousarray(per_t[:, :, 0].reshape(n, cols))


def rope_index(input_ids: np.ndarray, image_grid_thw: np.ndarray | None, image_token_id: int,
               video_token_id: int = -1, merge: int = 2) -> tuple[np.ndarray, int]:
    """Prefill M-RoPE positions [3, S] and rope_delta for one sequence (transformers 5.23
    get_rope_index with mm_token_type_ids, batch 1, no padding).

    Runs of equal token type: a text run of length L gets (cur+i, cur+i, cur+i) and advances cur
    by L; an image run gets (cur+ti, cur+hi, cur+wi) over its merged grid in raster order and then
    advances cur by max(h, w)/merge (NOT by its token count; t is ignored)."""
    ids = np.asarray(input_ids).reshape(-1)
    types = np.where(ids == image_token_id, 1, np.where(ids == video_token_id, 2, 0))
    grids = iter([] if image_grid_thw is None else [tuple(int(x) for x in g) for g in np.asarray(image_grid_thw)])
    cols: list[np.ndarray] = []
    cur = 0
    i = 0
    while i < len(ids):
        j = i
        while j < len(ids) and types[j] == types[i]:
            j += 1
        n = j - i
        if types[i] == 0:
            p = np.arange(cur, cur + n, dtype=np.int64)
            cols.append(np.stack([p, p, p]))
            cur += n
        elif types[i] == 1:
            t, h, w = next(grids)
            gh, gw = h // merge, w // merge
            if t * gh * gw != n:
                raise ValueError(f"image run of {n} tokens does not match grid {(t, h, w)}")
            tt, hh, ww = np.meshgrid(np.arange(t), np.arange(gh), np.arange(gw), indexing="ij")
            cols.append(np.stack([tt.ravel(), hh.ravel(), ww.ravel()]).astype(np.int64) + cur)
            cur += max(h, w) // merge
        else:
            raise NotImplementedError("video tokens")
        i = j
    pos = np.concatenate(cols, axis=1) if cols else np.zeros((3, 0), np.int64)
    delta = int(pos.max()) + 1 - len(ids) if len(ids) else 0
    return pos, delta


class OnnxQwen2VL:
    def __init__(self, model_dir: str | Path, threads: int = 1):
        model_dir = Path(model_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        prov = ["CPUExecutionProvider"]
        self.vision = ort.InferenceSession(str(model_dir / "vision_encoder.onnx"), opts, providers=prov)
        self.embed = ort.InferenceSession(str(model_dir / "embed_tokens.onnx"), opts, providers=prov)
        ranks = read_manifest_ranks(model_dir)
        if ranks:
            # A tensor-parallel export: the N rank graphs merged into one stock graph (each
            # ai.lumine.AllReduceSum becomes a Sum over the ranks; partition.py).
            from partition import load_merged

            text = (model_dir / "manifest.ron").read_text()
            layers = int(re.search(r"num_layers:\s*(\d+)", text).group(1))
            merged = load_merged(model_dir, ranks, layers)
            self.decoder = ort.InferenceSession(merged, opts, providers=prov)
        else:
            self.decoder = ort.InferenceSession(str(model_dir / "decoder_model_merged.onnx"), opts, providers=prov)
        self.partitions = max(1, len(ranks))
        ins = {i.name: i for i in self.decoder.get_inputs()}
        self.num_layers = sum(1 for n in ins if n.startswith("past_key_values.") and n.endswith(".key"))
        shape = ins["past_key_values.0.key"].shape
        self.kv_heads, self.head_dim = int(shape[1]), int(shape[3])
        self.out_names = [o.name for o in self.decoder.get_outputs()]
        self.tokens = read_manifest_tokens(model_dir)

    # -- graphs ---------------------------------------------------------------------------------
    def encode_image(self, pixel_values: np.ndarray, grid_thw) -> np.ndarray:
        """Image features of one still image; `pixel_values` as the processor writes them."""
        g = np.asarray(grid_thw, dtype=np.int64).reshape(1, 3)
        pv = fold_still(pixel_values.astype(np.float32), self.vision.get_inputs()[0].shape[1])
        return self.vision.run(None, {"pixel_values": pv, "grid_thw": g})[0]

    def embed_ids(self, ids: np.ndarray) -> np.ndarray:
        return self.embed.run(None, {"input_ids": np.asarray(ids, dtype=np.int64).reshape(1, -1)})[0]

    def empty_past(self, batch: int = 1) -> list[np.ndarray]:
        z = np.zeros((batch, self.kv_heads, 0, self.head_dim), np.float32)
        return [z, z] * self.num_layers

    def decode(self, embeds, attention_mask, position_ids, past):
        feed = {"inputs_embeds": embeds.astype(np.float32), "attention_mask": attention_mask.astype(np.int64),
                "position_ids": position_ids.astype(np.int64)}
        for i in range(self.num_layers):
            feed[f"past_key_values.{i}.key"] = past[2 * i]
            feed[f"past_key_values.{i}.value"] = past[2 * i + 1]
        out = self.decoder.run(None, feed)
        return out[0], out[1:]

    # -- whole prompt -----------------------------------------------------------------------------
    def prompt_embeds(self, input_ids, pixel_values=None, image_grid_thw=None) -> np.ndarray:
        """Embeds with image features scattered into the <|image_pad|> rows (one vision call per image)."""
        ids = np.asarray(input_ids, dtype=np.int64).reshape(-1)
        emb = self.embed_ids(ids)
        if image_grid_thw is None or len(image_grid_thw) == 0:
            return emb
        feats = []
        row = 0
        for g in np.asarray(image_grid_thw):
            n = int(np.prod(g))
            feats.append(self.encode_image(pixel_values[row : row + n], g))
            row += n
        feats = np.concatenate(feats, axis=0)
        slots = np.nonzero(ids == self.tokens["image_pad"])[0]
        if len(slots) != len(feats):
            raise ValueError(f"{len(slots)} image tokens but {len(feats)} image features")
        emb[0, slots] = feats
        return emb

    def greedy(self, input_ids, pixel_values=None, image_grid_thw=None, max_new_tokens=24, verify_chunk=0):
        """Prefill + greedy decode of exactly max_new_tokens tokens (no EOS stop).

        Returns (tokens, per-step logits [N, V], rope_delta, positions). With verify_chunk > 1 the
        generated tokens are also re-fed in chunks of that size on top of the prefill cache (the
        multi-token verify path) and the max |logit| difference to the one-by-one steps is returned
        as well."""
        ids = np.asarray(input_ids, dtype=np.int64).reshape(-1)
        s = len(ids)
        pos, delta = rope_index(ids, image_grid_thw, self.tokens["image_pad"], self.tokens["video_pad"])
        emb = self.prompt_embeds(ids, pixel_values, image_grid_thw)
        logits, prefill_past = self.decode(emb, np.ones((1, s), np.int64), pos[:, None, :], self.empty_past())
        step_logits = [logits[0, -1]]
        tokens = [int(np.argmax(logits[0, -1]))]
        past = prefill_past
        for k in range(max_new_tokens - 1):
            e = self.embed_ids(np.array([tokens[-1]]))
            p = np.full((3, 1, 1), s + k + delta, np.int64)  # all three rows: cache_len + delta
            logits, past = self.decode(e, np.ones((1, s + k + 1), np.int64), p, past)
            step_logits.append(logits[0, -1])
            tokens.append(int(np.argmax(logits[0, -1])))
        step_logits = np.stack(step_logits)
        verify_diff = None
        if verify_chunk > 1 and max_new_tokens > 1:
            # Feed tokens[0..N-2] in chunks on top of the prefill cache: the logits at chunk position
            # j must equal the one-by-one logits of step (offset + j + 1).
            verify_diff = 0.0
            past = prefill_past
            fed = 0
            while fed < max_new_tokens - 1:
                n = min(verify_chunk, max_new_tokens - 1 - fed)
                e = self.embed_ids(np.array(tokens[fed : fed + n]))
                p = np.broadcast_to(np.arange(s + fed, s + fed + n) + delta, (3, 1, n)).copy()
                logits, past = self.decode(e, np.ones((1, s + fed + n), np.int64), p, past)
                verify_diff = max(verify_diff, float(np.abs(logits[0] - step_logits[fed + 1 : fed + 1 + n]).max()))
                fed += n
        return tokens, step_logits, delta, pos, verify_diff
