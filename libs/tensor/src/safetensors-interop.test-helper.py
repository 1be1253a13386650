"""Python side of safetensors-interop.test.ts: writes checkpoints with the safetensors library (torch
tensors) and reads ours back, printing JSON on stdout. Run with the tool venv's python.

  write <dir>   model.safetensors (F32, F16, BF16, I64) + a two-shard folder <dir>/sharded with an index,
                and expected.json: every tensor's dtype, shape and bit patterns, plus torch's F32 -> BF16 /
                F16 round-to-nearest-even of edge values.
  read <dir>    loads every *.safetensors in <dir> with safetensors.safe_open; prints metadata, dtype,
                shape and bit patterns per tensor.
"""
import json
import os
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

BITS_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16, torch.int64: torch.int64}
NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def describe(t):
    return {"dtype": NAMES[t.dtype], "shape": list(t.shape), "bits": t.contiguous().view(BITS_VIEW[t.dtype]).flatten().tolist()}


def write(out):
    g = torch.Generator().manual_seed(1234)
    base = torch.randn(64, 48, generator=g, dtype=torch.float64) * 3
    tensors = {
        "model.layers.0.self_attn.q_proj.weight": base.to(torch.float32),
        "model.layers.0.mlp.down_proj.weight": base.to(torch.float16),
        "model.embed_tokens.weight": base.to(torch.bfloat16),
        "position_ids": torch.arange(-5, 20, dtype=torch.int64).reshape(5, 5),
        "model.norm.weight": torch.ones(48, dtype=torch.bfloat16),
    }
    os.makedirs(out, exist_ok=True)
    save_file(tensors, os.path.join(out, "model.safetensors"), metadata={"format": "pt", "source": "python"})
    sharded = os.path.join(out, "sharded")
    os.makedirs(sharded, exist_ok=True)
    names = list(tensors)
    parts = [names[:2], names[2:]]
    weight_map = {}
    for k, part in enumerate(parts, start=1):
        fname = f"model-{k:05d}-of-{len(parts):05d}.safetensors"
        save_file({n: tensors[n] for n in part}, os.path.join(sharded, fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in part})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    with open(os.path.join(sharded, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    # torch's F32 -> BF16 / F16 rounding (round to nearest even) on random and edge values
    edge = torch.tensor(
        [1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-11, 65504, 65519.99, 65520, 2**-24, 2**-25, 3 * 2**-25, 2**-133, 2**-134,
         3.3895313892515355e38, 3.4028234663852886e38, -0.0, float("inf"), 0.1, -1e-40],
        dtype=torch.float32,
    )
    rnd = torch.randn(4096, generator=g, dtype=torch.float32) * torch.exp2(torch.randint(-30, 30, (4096,), generator=g).to(torch.float32))
    src = torch.cat([edge, rnd])
    expected = {
        "tensors": {n: describe(t) for n, t in tensors.items()},
        "rounding": {
            "f32_bits": src.view(torch.int32).tolist(),
            "bf16_bits": src.to(torch.bfloat16).view(torch.int16).tolist(),
            "f16_bits": src.to(torch.float16).view(torch.int16).tolist(),
        },
    }
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f)


def read(folder):
    result = {}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".safetensors"):
            continue
        with safe_open(os.path.join(folder, name), framework="pt") as f:
            result[name] = {"metadata": f.metadata(), "tensors": {k: describe(f.get_tensor(k)) for k in f.keys()}}
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2])
