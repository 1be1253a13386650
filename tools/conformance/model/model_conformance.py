"""Reference results for @hm3/model from transformers (PyTorch, fp32).

  make --out DIR       tiny random Llama-family checkpoints, hidden 64 (llama; llama with attention
                       and MLP biases; qwen2; tied llama with head_dim 32) and a narrow mistral of
                       hidden 32, saved as HF folders in bf16 with a char-level tokenizer.json
  reference SPEC OUT   SPEC = {"models": [dir], "prompts": [[id]], "max_new_tokens": n,
                       "float64_logits"?: bool,
                       "paths": [{"pool": [dir], "steps": [{"pool_index", "layer_index", "affine"?:
                       {"scale", "shift"}}], "head_source"}], "texts": [str]}
                       OUT  = {"models": [{"logits": [[[...]]], "generations": [[id]], "logits64"?: ...}],
                               "paths": [{"logits": ...}], "encodings": {dir: [[id]]}}
The path reference is a re-implementation of the path semantics over transformers' own decoder
layers: embed with the head source, per step h = h * scale + shift then layer(h), norm + head.
"""
import json
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

torch.set_num_threads(2)
VOCAB_CHARS = [chr(c) for c in range(32, 127)]  # 95 printable ASCII characters


def char_tokenizer(out):
    from tokenizers import Tokenizer, decoders, models

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for ch in VOCAB_CHARS:
        vocab[ch] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.decoder = decoders.Fuse()
    tok.save(f"{out}/tokenizer.json")
    with open(f"{out}/tokenizer_config.json", "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}, f)
    return len(vocab)


def make(out):
    common = dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                  initializer_range=0.15, bos_token_id=1, eos_token_id=2, max_position_embeddings=256)
    specs = {
        "base": (transformers.LlamaConfig, dict(intermediate_size=128, num_hidden_layers=3, rope_theta=10000.0)),
        "translate": (transformers.LlamaConfig, dict(intermediate_size=128, num_hidden_layers=2, attention_bias=True,
                                                     mlp_bias=True, rope_theta=500000.0)),
        "math": (transformers.Qwen2Config, dict(intermediate_size=96, num_hidden_layers=2, rope_theta=1000000.0,
                                                tie_word_embeddings=False, use_sliding_window=False)),
        "code": (transformers.LlamaConfig, dict(intermediate_size=128, num_hidden_layers=3, tie_word_embeddings=True,
                                                head_dim=32)),
        # hidden size 32: for the "mismatched hidden sizes" path check
        "narrow": (transformers.MistralConfig, dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                                    sliding_window=None)),
    }
    for i, (name, (cls, extra)) in enumerate(specs.items()):
        torch.manual_seed(1000 + i)
        d = f"{out}/{name}"
        vocab = char_tokenizer_dir(d)
        config = cls(vocab_size=vocab, **{**common, **extra})
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
        with torch.no_grad():
            for n, p in model.named_parameters():
                if n.endswith("norm.weight"):
                    p.copy_(1 + 0.2 * torch.randn_like(p))
                elif n.endswith(".bias"):
                    p.copy_(0.1 * torch.randn_like(p))
        model.to(torch.bfloat16).save_pretrained(d, safe_serialization=True)
    print(json.dumps({"models": [f"{out}/{n}" for n in specs]}))


def char_tokenizer_dir(d):
    import os

    os.makedirs(d, exist_ok=True)
    return char_tokenizer(d)


def load(d, cache, dtype=torch.float32):
    if (d, dtype) not in cache:
        cache[(d, dtype)] = AutoModelForCausalLM.from_pretrained(d, dtype=dtype, attn_implementation="eager").eval()
    return cache[(d, dtype)]


def causal_mask(n):
    return torch.triu(torch.full((n, n), float("-inf")), 1)[None, None]


@torch.no_grad()
def path_logits(path, prompt, cache):
    pool = [load(d, cache) for d in path["pool"]]
    head = pool[path.get("head_source", len(pool) - 1)]
    ids = torch.tensor([prompt])
    pos = torch.arange(len(prompt))[None]
    h = head.model.embed_tokens(ids)
    mask = causal_mask(len(prompt))
    for step in path["steps"]:
        m = pool[step["pool_index"]]
        affine = step.get("affine")
        if affine:
            h = h * torch.tensor(affine["scale"], dtype=torch.float32) + torch.tensor(affine["shift"], dtype=torch.float32)
        cos_sin = m.model.rotary_emb(h, pos)
        out = m.model.layers[step["layer_index"]](h, attention_mask=mask, position_ids=pos, position_embeddings=cos_sin)
        h = out[0] if isinstance(out, tuple) else out
    return head.lm_head(head.model.norm(h))[0]


@torch.no_grad()
def reference(spec_file, out_file):
    spec = json.load(open(spec_file))
    cache = {}
    result = {"models": [], "paths": [], "encodings": {}}
    for d in spec.get("models", []):
        m = load(d, cache)
        logits, gens = [], []
        for p in spec["prompts"]:
            ids = torch.tensor([p])
            logits.append(m(ids).logits[0].tolist())
            g = m.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=spec["max_new_tokens"],
                           min_new_tokens=spec["max_new_tokens"], eos_token_id=None, pad_token_id=0)
            gens.append(g[0, len(p):].tolist())
        entry = {"logits": logits, "generations": gens}
        if spec.get("float64_logits"):
            # The exact answer up to f64 rounding: how far transformers' own fp32 is from it says how
            # close any two fp32 implementations can be expected to agree.
            m64 = load(d, cache, torch.float64)
            entry["logits64"] = [m64(torch.tensor([p])).logits[0].tolist() for p in spec["prompts"]]
        result["models"].append(entry)
    for path in spec.get("paths", []):
        result["paths"].append({"logits": [path_logits(path, p, cache).tolist() for p in spec["prompts"]]})
    if spec.get("texts"):
        from tokenizers import Tokenizer

        for d in spec.get("tokenizers", []):
            tok = Tokenizer.from_file(f"{d}/tokenizer.json")
            ids = [tok.encode(t).ids for t in spec["texts"]]
            result["encodings"][d] = {"ids": ids, "decoded": [tok.decode(x) for x in ids]}
    json.dump(result, open(out_file, "w"))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[sys.argv.index("--out") + 1])
    elif sys.argv[1] == "reference":
        reference(sys.argv[2], sys.argv[3])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
