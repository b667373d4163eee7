"""Tensor-parallel partitions of the text decoder (Megatron style) and the cross-rank reduction.

Rank r of N holds (QWEN2VL.md section 6 names; N divides num_key_value_heads):

* KV heads ``[r*kv/N, (r+1)*kv/N)`` and the query heads they serve (GQA groups stay whole):
  the matching rows of q_proj/k_proj/v_proj (weight and bias), the matching columns of o_proj;
* MLP inner units ``[a_r, b_r)`` (near-equal contiguous split of intermediate_size, any size):
  rows of gate_proj/up_proj, columns of down_proj;
* the norms (replicated: every rank keeps the whole residual stream);
* the final norm and lm_head on rank 0 only (rank 0 outputs ``logits``; the others output the
  final residual ``hidden_states``, which keeps their last reduction alive in the graph).

o_proj and down_proj then give partial sums: each is followed by ``ai.lumine.AllReduceSum``
(one input, one output, same shape; output = sum over ranks of the input), 2 per layer, in the
same order on every rank. Stock ONNX Runtime has no collectives, so the operator is ours: the
Rust engine implements it (app/engine/src/partition.rs); :func:`merge_ranks` turns N rank graphs
into one stock-ONNX graph (each reduction becomes a ``Sum`` over the ranks) with exactly the
interface of the unpartitioned ``decoder_model_merged.onnx``, which is how the exporter checks a
partitioned export against transformers and how the Python reference runner executes it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from qwen2vl_config import Qwen2VLFiles
from qwen2vl_modules import Decoder, rms_norm, rotate_half

DOMAIN = "ai.lumine"
OP = "AllReduceSum"


@torch.library.custom_op("lumine::all_reduce_sum", mutates_args=())
def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Marker for the export: the identity in eager mode (one rank alone), ai.lumine.AllReduceSum in ONNX."""
    return x.clone()


@all_reduce_sum.register_fake
def _all_reduce_sum_fake(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


def translation_table() -> dict:
    """custom_translation_table for torch.onnx.export: lumine::all_reduce_sum -> ai.lumine.AllReduceSum."""
    import onnx
    import onnxscript
    from onnx.defs import OpSchema

    if not onnx.defs.has(OP, DOMAIN):
        onnx.defs.register_schema(OpSchema(
            OP, DOMAIN, 1, doc="Element-wise sum of the input over every rank of the tensor-parallel group.",
            inputs=[OpSchema.FormalParameter("input", "T")], outputs=[OpSchema.FormalParameter("output", "T")],
            type_constraints=[("T", ["tensor(float)"], "32-bit float")]))
    lumine = onnxscript.values.Opset(DOMAIN, 1)

    def all_reduce_sum_onnx(x):
        return lumine.AllReduceSum(x)

    return {torch.ops.lumine.all_reduce_sum.default: all_reduce_sum_onnx}


def mlp_bounds(intermediate: int, partitions: int) -> list[tuple[int, int]]:
    """Contiguous near-equal split of the MLP inner units (the first ranks get the remainder)."""
    base, extra = divmod(intermediate, partitions)
    out, start = [], 0
    for r in range(partitions):
        n = base + (1 if r < extra else 0)
        out.append((start, start + n))
        start += n
    return out


def _p(t: torch.Tensor | None) -> nn.Parameter | None:
    return None if t is None else nn.Parameter(t.detach().clone().contiguous(), requires_grad=False)


class RankDecoder(nn.Module):
    """Rank ``rank`` of ``partitions``: same inputs as :class:`Decoder` with past K/V of this rank's
    KV heads only; outputs logits (rank 0) or hidden_states (other ranks), then present K/V."""

    def __init__(self, language_model: nn.Module, lm_head: nn.Module, cfg: Qwen2VLFiles, rank: int, partitions: int):
        super().__init__()
        t = cfg.text
        if partitions < 1 or t.num_key_value_heads % partitions:
            raise ValueError(f"--partitions {partitions} must divide num_key_value_heads {t.num_key_value_heads}")
        self.t = t
        self.rank = rank
        rep = t.num_attention_heads // t.num_key_value_heads
        self.kv = t.num_key_value_heads // partitions
        self.hq = self.kv * rep
        self.n_rep = rep
        hd = t.head_dim
        q0, k0 = rank * self.hq * hd, rank * self.kv * hd
        qs, ks = slice(q0, q0 + self.hq * hd), slice(k0, k0 + self.kv * hd)
        a, b = mlp_bounds(t.intermediate_size, partitions)[rank]
        self.layers_w = nn.ModuleList()
        for layer in language_model.layers:
            att, mlp = layer.self_attn, layer.mlp
            m = nn.Module()
            m.ln1 = _p(layer.input_layernorm.weight)
            m.ln2 = _p(layer.post_attention_layernorm.weight)
            m.q_w, m.q_b = _p(att.q_proj.weight[qs]), _p(None if att.q_proj.bias is None else att.q_proj.bias[qs])
            m.k_w, m.k_b = _p(att.k_proj.weight[ks]), _p(None if att.k_proj.bias is None else att.k_proj.bias[ks])
            m.v_w, m.v_b = _p(att.v_proj.weight[ks]), _p(None if att.v_proj.bias is None else att.v_proj.bias[ks])
            m.o_w = _p(att.o_proj.weight[:, qs])
            # A bias after a row-parallel matmul is added once, by rank 0.
            m.o_b = _p(att.o_proj.bias) if att.o_proj.bias is not None and rank == 0 else None
            m.gate_w, m.up_w = _p(mlp.gate_proj.weight[a:b]), _p(mlp.up_proj.weight[a:b])
            m.down_w = _p(mlp.down_proj.weight[:, a:b])
            self.layers_w.append(m)
        if rank == 0:
            self.norm_w = _p(language_model.norm.weight)
            self.lm_head_w = _p(lm_head.weight)
        ref = Decoder(language_model, lm_head, cfg)
        self.register_buffer("inv_freq", ref.inv_freq.clone(), persistent=False)

    def rope_tables(self, position_ids: torch.Tensor):
        return Decoder.rope_tables(self, position_ids)

    def forward(self, inputs_embeds, attention_mask, position_ids, *past):
        t = self.t
        b, s, _ = inputs_embeds.shape
        cos, sin = self.rope_tables(position_ids)
        total = attention_mask.shape[1]
        k_pos = torch.arange(total, dtype=torch.int64, device=inputs_embeds.device)
        q_pos = torch.arange(s, dtype=torch.int64, device=inputs_embeds.device) + (total - s)
        allowed = (k_pos[None, :] <= q_pos[:, None])[None, None] & (attention_mask[:, None, None, :] != 0)
        neg = torch.finfo(torch.float32).min
        mask = torch.where(allowed, torch.zeros((), dtype=torch.float32), torch.full((), neg, dtype=torch.float32))

        h = inputs_embeds
        presents = []
        scale = t.head_dim**-0.5
        hd, kv, hq = t.head_dim, self.kv, self.hq
        for i, m in enumerate(self.layers_w):
            x = rms_norm(h, m.ln1, t.rms_norm_eps)
            q = F.linear(x, m.q_w, m.q_b).view(b, s, hq, hd).transpose(1, 2)
            k = F.linear(x, m.k_w, m.k_b).view(b, s, kv, hd).transpose(1, 2)
            v = F.linear(x, m.v_w, m.v_b).view(b, s, kv, hd).transpose(1, 2)
            q = q * cos + rotate_half(q) * sin
            k = k * cos + rotate_half(k) * sin
            k = torch.cat([past[2 * i], k], dim=2)
            v = torch.cat([past[2 * i + 1], v], dim=2)
            presents += [k, v]
            kk = k[:, :, None].expand(b, kv, self.n_rep, k.shape[2], hd).reshape(b, hq, k.shape[2], hd)
            vv = v[:, :, None].expand(b, kv, self.n_rep, v.shape[2], hd).reshape(b, hq, v.shape[2], hd)
            w = torch.softmax((q @ kk.transpose(2, 3)) * scale + mask, dim=-1)
            o = (w @ vv).transpose(1, 2).reshape(b, s, hq * hd)
            h = h + torch.ops.lumine.all_reduce_sum(F.linear(o, m.o_w, m.o_b))
            x = rms_norm(h, m.ln2, t.rms_norm_eps)
            h = h + torch.ops.lumine.all_reduce_sum(F.linear(F.silu(F.linear(x, m.gate_w)) * F.linear(x, m.up_w), m.down_w))
        if self.rank == 0:
            return (F.linear(rms_norm(h, self.norm_w, t.rms_norm_eps), self.lm_head_w), *presents)
        return (h, *presents)


def rank_file(rank: int) -> str:
    return f"decoder.rank{rank}.onnx"


# ---------------------------------------------------------------------------------------------
# N rank graphs -> one stock ONNX graph (for checking and for the Python reference runner)
# ---------------------------------------------------------------------------------------------


def _reductions(graph) -> list:
    return [n for n in graph.node if n.domain == DOMAIN and n.op_type == OP]


def merge_ranks(rank_models: list, num_layers: int):
    """One ModelProto computing what the N ranks compute in lock-step, with the interface of the
    unpartitioned decoder: full past K/V in (split over the ranks by KV head), logits and full
    present K/V out (concatenated back). The k-th AllReduceSum of every rank becomes one Sum."""
    import onnx
    from onnx import helper

    n = len(rank_models)
    prefixed = [onnx.compose.add_prefix(m, f"r{r}/") for r, m in enumerate(rank_models)]
    counts = {len(_reductions(m.graph)) for m in prefixed}
    if counts != {2 * num_layers}:
        raise ValueError(f"rank graphs hold {counts} AllReduceSum nodes, expected {2 * num_layers} each")

    g0 = rank_models[0].graph
    nodes, inits, seen_fn = [], [], set()
    functions = []
    # Shared inputs fan out to every rank; past K/V are split by head.
    for name in ("inputs_embeds", "attention_mask", "position_ids"):
        for r in range(n):
            nodes.append(helper.make_node("Identity", [name], [f"r{r}/{name}"], name=f"fanout/{r}/{name}"))
    for i in range(num_layers):
        for kind in ("key", "value"):
            past = f"past_key_values.{i}.{kind}"
            present = f"present.{i}.{kind}"
            nodes.append(helper.make_node("Split", [past], [f"r{r}/{past}" for r in range(n)], name=f"split/{past}",
                                          axis=1, num_outputs=n))
            nodes.append(helper.make_node("Concat", [f"r{r}/{present}" for r in range(n)], [present],
                                          name=f"concat/{present}", axis=1))
    nodes.append(helper.make_node("Identity", ["r0/logits"], ["logits"], name="out/logits"))
    # Reductions: k-th of each rank -> one Sum.
    reds = [_reductions(m.graph) for m in prefixed]
    for k in range(2 * num_layers):
        ins = [reds[r][k].input[0] for r in range(n)]
        nodes.append(helper.make_node("Sum", ins, [f"allreduce/{k}"], name=f"allreduce/{k}"))
        for r in range(n):
            nodes.append(helper.make_node("Identity", [f"allreduce/{k}"], [reds[r][k].output[0]], name=f"allreduce/{k}/r{r}"))
    for m in prefixed:
        red_ids = {id(x) for x in _reductions(m.graph)}
        nodes += [x for x in m.graph.node if id(x) not in red_ids]
        inits += list(m.graph.initializer)
        for f in m.functions:
            if (f.domain, f.name) not in seen_fn:
                seen_fn.add((f.domain, f.name))
                functions.append(f)
    graph = helper.make_graph(_toposort(nodes), "decoder_merged_ranks", list(g0.input),
                              [g0.output[0]] + [o for o in g0.output[1:]], inits)
    # Past and present carry the full head count (axis 1): n times a rank's.
    for o in list(graph.input) + list(graph.output):
        if o.name.startswith(("past_key_values.", "present.")):
            d = o.type.tensor_type.shape.dim[1]
            if d.HasField("dim_value"):
                d.dim_value *= n
    opsets = [op for op in rank_models[0].opset_import if op.domain != DOMAIN]
    return helper.make_model(graph, opset_imports=opsets, functions=functions, ir_version=rank_models[0].ir_version)


def _toposort(nodes: list) -> list:
    produced = {}
    for idx, nd in enumerate(nodes):
        for o in nd.output:
            produced[o] = idx
    deps = [{produced[i] for i in nd.input if i in produced} for nd in nodes]
    users: dict[int, list[int]] = {}
    for idx, ds in enumerate(deps):
        for d in ds:
            users.setdefault(d, []).append(idx)
    left = [len(ds) for ds in deps]
    ready = [i for i, c in enumerate(left) if c == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(nodes[i])
        for u in users.get(i, []):
            left[u] -= 1
            if left[u] == 0:
                ready.append(u)
    if len(order) != len(nodes):
        raise ValueError("rank graphs have a cycle after merging (reductions out of order across ranks?)")
    return order


def load_merged(model_dir, ranks: list[str], num_layers: int) -> bytes:
    """The merged graph of a partitioned model directory, serialized (for onnxruntime)."""
    import onnx
    from pathlib import Path

    models = [onnx.load(str(Path(model_dir) / f)) for f in ranks]
    return merge_ranks(models, num_layers).SerializeToString()
