"""Small, export-friendly torch modules computing exactly what transformers 5.23's Qwen2-VL computes.

Why not trace transformers' own modules: their cache classes (DynamicCache) and mask helpers do
not export cleanly, the vision tower splits attention with Python lists built from
``grid_thw.tolist()`` (data-dependent), and positions come from ``get_rope_index`` outside the
graph. These modules re-implement the math of shared QWEN2VL.md sections 5-7 with the
checkpoint's own weight tensors, explicit past tensors and ``torch.cat``:

* ``VisionEncoder``: one image per call (t = 1). The 2-D rotary positions are computed from
  ``grid_thw`` inside the graph with integer arithmetic on ``arange(patches)`` (no data-dependent
  shapes), so any image size works. No mask: a single image attends to itself only, which is
  what HF's per-image ``cu_seqlens`` split does.
* ``TokenEmbedding``: the embedding gather.
* ``Decoder``: the 28-layer (or however many) text model + final norm + lm_head, taking
  ``inputs_embeds``, a 0/1 ``attention_mask`` over past+new keys, 3-row M-RoPE ``position_ids``
  and per-layer past K/V (K stored after RoPE, as HF caches it); returns logits for every new
  position and the concatenated present K/V.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from qwen2vl_config import Qwen2VLFiles


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    # Pairs are (i, i + d/2), not adjacent elements (QWEN2VL.md section 5).
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    # Same op order as Qwen2VLRMSNorm: x * rsqrt(mean(x^2) + eps), then the gain.
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


class VisionEncoder(nn.Module):
    def __init__(self, visual: nn.Module, cfg: Qwen2VLFiles):
        super().__init__()
        v = cfg.vision
        self.embed_dim = v.embed_dim
        self.num_heads = v.num_heads
        self.head_dim = v.embed_dim // v.num_heads
        self.merge = v.spatial_merge_size
        # Conv3d with kernel == stride over [C,T,P,P] rows == one matmul. A still frame is the same
        # picture at every t, so the kernel's T slices are summed (x@w0 + x@w1 == x@(w0+w1)) and the
        # graph takes one copy: [patches, C*P*P] in (c, y, x) order, half of what the processor
        # writes (manifest `temporal_folded: true`; the engine's preprocessing writes only that).
        w = visual.patch_embed.proj.weight.detach()  # [E, C, T, P, P]
        w = w.sum(dim=2)  # [E, C, P, P]
        self.patch_w = nn.Parameter(w.reshape(w.shape[0], -1).t().contiguous(), requires_grad=False)
        # Vision rotary: theta 10000 (not in the config), dim = head_dim/2, i.e. head_dim/4 freqs.
        spatial = self.head_dim // 2
        inv = 1.0 / (10000.0 ** (torch.arange(0, spatial, 2, dtype=torch.float) / spatial))
        ref = getattr(visual.rotary_pos_emb, "inv_freq", None)
        if ref is not None:
            inv = ref.detach().clone().float()  # bit-identical to HF's buffer
        self.register_buffer("inv_freq", inv, persistent=False)
        self.blocks = visual.blocks
        self.merger = visual.merger

    def forward(self, pixel_values: torch.Tensor, grid_thw: torch.Tensor) -> torch.Tensor:
        x = pixel_values @ self.patch_w  # [N, E]
        n = x.shape[0]
        m = self.merge
        # Row r of pixel_values is patch (h, w) = (m*bh + mh, m*bw + mw) with
        # r = ((bh*(gw/m) + bw)*m + mh)*m + mw (raster over merge windows, then inside the window).
        # Video frames (t > 1) would repeat the pattern, hence the modulo on the window row.
        gh = grid_thw[0, 1]
        gw = grid_thw[0, 2]
        r = torch.arange(n, dtype=torch.int64, device=x.device)
        mw = r % m
        mh = (r // m) % m
        win = r // (m * m)
        bw = win % (gw // m)
        bh = (win // (gw // m)) % (gh // m)
        hpos = (bh * m + mh).to(torch.float32)
        wpos = (bw * m + mw).to(torch.float32)
        fh = hpos[:, None] * self.inv_freq[None, :]
        fw = wpos[:, None] * self.inv_freq[None, :]
        ang = torch.cat([fh, fw, fh, fw], dim=-1)  # [N, head_dim]: [h | w | h | w]
        cos = ang.cos()[:, None, :]
        sin = ang.sin()[:, None, :]
        scale = self.head_dim**-0.5
        for blk in self.blocks:
            y = F.layer_norm(x, (self.embed_dim,), blk.norm1.weight, blk.norm1.bias, 1e-6)
            qkv = F.linear(y, blk.attn.qkv.weight, blk.attn.qkv.bias).reshape(n, 3, self.num_heads, self.head_dim)
            q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]  # [N, heads, hd]
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)  # [heads, N, hd]
            att = torch.softmax((q @ k.transpose(1, 2)) * scale, dim=-1)
            o = (att @ v).transpose(0, 1).reshape(n, self.embed_dim)
            x = x + F.linear(o, blk.attn.proj.weight, blk.attn.proj.bias)
            y = F.layer_norm(x, (self.embed_dim,), blk.norm2.weight, blk.norm2.bias, 1e-6)
            h = F.linear(y, blk.mlp.fc1.weight, blk.mlp.fc1.bias)
            h = h * torch.sigmoid(1.702 * h)  # quick_gelu
            x = x + F.linear(h, blk.mlp.fc2.weight, blk.mlp.fc2.bias)
        mg = self.merger
        y = F.layer_norm(x, (self.embed_dim,), mg.ln_q.weight, mg.ln_q.bias, 1e-6)
        y = y.reshape(-1, self.embed_dim * m * m)  # rows 4k..4k+3 = one 2x2 window
        y = F.linear(y, mg.mlp[0].weight, mg.mlp[0].bias)
        y = F.gelu(y)  # exact erf GELU
        return F.linear(y, mg.mlp[2].weight, mg.mlp[2].bias)


class TokenEmbedding(nn.Module):
    def __init__(self, embed: nn.Embedding):
        super().__init__()
        self.weight = nn.Parameter(embed.weight.detach(), requires_grad=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(input_ids, self.weight)


class Decoder(nn.Module):
    """inputs_embeds [B,S,D], attention_mask [B,P+S], position_ids [3,B,S], past K/V
    [B,kv,P,hd] per layer  ->  logits [B,S,V], present K/V [B,kv,P+S,hd] per layer."""

    def __init__(self, language_model: nn.Module, lm_head: nn.Module, cfg: Qwen2VLFiles):
        super().__init__()
        t = cfg.text
        self.t = t
        self.layers = language_model.layers
        self.norm_w = language_model.norm.weight
        self.lm_head_w = lm_head.weight
        self.n_rep = t.num_attention_heads // t.num_key_value_heads
        inv = 1.0 / (t.rope_theta ** (torch.arange(0, t.head_dim, 2, dtype=torch.float) / t.head_dim))
        ref = getattr(getattr(language_model, "rotary_emb", None), "inv_freq", None)
        if ref is not None:
            inv = ref.detach().clone().float()
        self.register_buffer("inv_freq", inv, persistent=False)

    def rope_tables(self, position_ids: torch.Tensor):
        # freqs[a] = pos[a] * inv  (f32 product, like HF), then the contiguous mrope sections pick
        # axis t, h, w for consecutive frequency chunks; duplicated to the full head dim.
        freqs = position_ids[..., None].to(torch.float32) * self.inv_freq  # [3, B, S, hd/2]
        chunks = []
        start = 0
        for axis, size in enumerate(self.t.mrope_section):
            chunks.append(freqs[axis % 3, :, :, start : start + size])
            start += size
        f = torch.cat(chunks, dim=-1)
        f = torch.cat([f, f], dim=-1)  # [B, S, hd]
        return f.cos()[:, None], f.sin()[:, None]  # [B, 1, S, hd]

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        t = self.t
        b, s, _ = inputs_embeds.shape
        cos, sin = self.rope_tables(position_ids)

        # Additive mask [B,1,S,P+S]: query i (absolute index P+i) sees key j iff j <= P+i and
        # attention_mask[b, j] == 1. finfo.min rather than -inf (as HF) so that a fully masked row
        # gives a uniform softmax instead of NaN.
        total = attention_mask.shape[1]
        k_pos = torch.arange(total, dtype=torch.int64, device=inputs_embeds.device)
        q_pos = torch.arange(s, dtype=torch.int64, device=inputs_embeds.device) + (total - s)
        allowed = (k_pos[None, :] <= q_pos[:, None])[None, None] & (attention_mask[:, None, None, :] != 0)
        neg = torch.finfo(torch.float32).min
        mask = torch.where(allowed, torch.zeros((), dtype=torch.float32), torch.full((), neg, dtype=torch.float32))

        h = inputs_embeds
        presents = []
        scale = t.head_dim**-0.5
        for i, layer in enumerate(self.layers):
            att = layer.self_attn
            x = rms_norm(h, layer.input_layernorm.weight, t.rms_norm_eps)
            q = F.linear(x, att.q_proj.weight, att.q_proj.bias).view(b, s, t.num_attention_heads, t.head_dim).transpose(1, 2)
            k = F.linear(x, att.k_proj.weight, att.k_proj.bias).view(b, s, t.num_key_value_heads, t.head_dim).transpose(1, 2)
            v = F.linear(x, att.v_proj.weight, att.v_proj.bias).view(b, s, t.num_key_value_heads, t.head_dim).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = torch.cat([past[2 * i], k], dim=2)
            v = torch.cat([past[2 * i + 1], v], dim=2)
            presents += [k, v]
            # GQA: KV head j serves query heads j*r .. j*r+r-1 (repeat-interleave, as repeat_kv).
            kk = k[:, :, None].expand(b, t.num_key_value_heads, self.n_rep, k.shape[2], t.head_dim).reshape(b, t.num_attention_heads, k.shape[2], t.head_dim)
            vv = v[:, :, None].expand(b, t.num_key_value_heads, self.n_rep, v.shape[2], t.head_dim).reshape(b, t.num_attention_heads, v.shape[2], t.head_dim)
            w = torch.softmax((q @ kk.transpose(2, 3)) * scale + mask, dim=-1)
            o = (w @ vv).transpose(1, 2).reshape(b, s, t.num_attention_heads * t.head_dim)
            h = h + F.linear(o, att.o_proj.weight)
            x = rms_norm(h, layer.post_attention_layernorm.weight, t.rms_norm_eps)
            mlp = layer.mlp
            h = h + F.linear(F.silu(F.linear(x, mlp.gate_proj.weight)) * F.linear(x, mlp.up_proj.weight), mlp.down_proj.weight)
        h = rms_norm(h, self.norm_w, t.rms_norm_eps)
        logits = F.linear(h, self.lm_head_w)
        return (logits, *presents)
