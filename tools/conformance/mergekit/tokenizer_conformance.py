"""HM3 vs mergekit on tokenizer merges: `tokenizer_source: union | base | <model>` and the `tokenizer:` block.

Usage: python tokenizer_conformance.py WORK_DIR REPORT.md  (run by tokenizer-conformance.test.ts)

Fixtures: small random Llama checkpoints (fp32) whose tokenizer.json is the fixture zoo's
(tools/fixtures/zoo/base/tokenizer.json, a 48-token BPE) with different added tokens per model, so the
vocabularies overlap in every way (a token in all models, in the base and one expert, in two experts
but not the base, in one expert only); config vocab_size = the tokenizer's size. One set has untied
heads, one tied embeddings (no lm_head.weight). A frankenmerge (`slices`) takes its embeddings from
the first slice's sources and its head from the last's.

Per case, both tools merge; the outputs must have, loaded with transformers:
  - the same vocabulary: the same tokens; the same ids for every token of the tokenizer the output is
    built on (base / <model>: every id; union: the base's tokens, since mergekit orders the tokens it
    adds by iterating a Python set of models, which changes from run to run -- HM3 uses recipe order);
  - the same added tokens with the same settings (content, special, normalized, lstrip, rstrip,
    single_word);
  - the same config.json vocab_size and the same tensor names;
  - per tensor max|hm3 - mergekit| <= 1e-5 * max|mergekit|, embeddings and head compared row by row
    per token (through each tool's own vocabulary) and padding rows in order.
Zero rows are not compared: mergekit 0.1.4 fails on `source: {kind: zero}` in `tokenizer.tokens`
(compute_default_embedding returns an unbound variable) and on a token none of a tensor's inputs has
(`ZeroEmbedding()` misses its `kind`); HM3 gives such tokens the zero row mergekit's code intends.
"""

import copy
import json
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

from conformance import REPO, llama_shapes, load_dir, run_hm3, run_mergekit

ZOO = REPO / "tools" / "fixtures" / "zoo" / "base"

# Added tokens per model: (content, special, normalized). A token two models add has the same settings
# in both (mergekit keeps the settings of whichever model its set iteration meets first).
ADDED = {
    "base": [("<tool>", True, False)],
    "expert_a": [("<tool>", True, False), ("<a_only>", True, False), ("<shared>", False, True)],
    "expert_b": [("<shared>", False, True), ("<b_only>", False, True)],
}

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-6,
    "torch_dtype": "float32",
}


def tokenizer_files(added):
    tok = json.loads((ZOO / "tokenizer.json").read_text())
    cfg = json.loads((ZOO / "tokenizer_config.json").read_text())
    n = len(tok["model"]["vocab"])
    for i, (content, special, normalized) in enumerate(added):
        entry = {"id": n + i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
                 "normalized": normalized, "special": special}
        tok["added_tokens"].append(entry)
        cfg["added_tokens_decoder"][str(n + i)] = {k: entry[k] for k in ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
    return tok, cfg, n + len(added)


def make_models(root: Path):
    g = torch.Generator().manual_seed(4321)
    for tied in (False, True):
        for name, added in ADDED.items():
            tok, tok_cfg, vocab = tokenizer_files(added)
            config = {**CONFIG, "vocab_size": vocab, "tie_word_embeddings": tied}
            shapes = llama_shapes(config)
            if tied:
                del shapes["lm_head.weight"]
            d = root / (name + ("_tied" if tied else ""))
            d.mkdir(parents=True, exist_ok=True)
            tensors = {n: torch.randn(s, generator=g) * 0.05 for n, s in shapes.items()}
            save_file(tensors, str(d / "model.safetensors"), metadata={"format": "pt"})
            (d / "config.json").write_text(json.dumps(config))
            (d / "tokenizer.json").write_text(json.dumps(tok))
            (d / "tokenizer_config.json").write_text(json.dumps(tok_cfg))
            (d / "special_tokens_map.json").write_text((ZOO / "special_tokens_map.json").read_text())


CASES = {
    "tokenizer_union": """
merge_method: linear
base_model: base
models:
  - model: base
    parameters: {weight: 0.5}
  - model: expert_a
    parameters: {weight: 0.3}
  - model: expert_b
    parameters: {weight: 0.2}
tokenizer_source: union
dtype: float32
""",
    "tokenizer_union_tied": """
merge_method: task_arithmetic
base_model: base_tied
models:
  - model: expert_a_tied
    parameters: {weight: 0.7}
  - model: expert_b_tied
    parameters: {weight: 0.4}
tokenizer_source: union
dtype: float32
""",
    "tokenizer_base": """
merge_method: task_arithmetic
base_model: base
models:
  - model: expert_a
    parameters: {weight: [0.2, 0.9]}
  - model: expert_b
    parameters: {weight: 0.6}
tokenizer_source: base
dtype: float32
""",
    "tokenizer_model": """
merge_method: ties
base_model: base
models:
  - model: expert_a
    parameters: {weight: 1.0, density: 0.6}
  - model: expert_b
    parameters: {weight: 0.5, density: 0.8}
tokenizer_source: expert_b
dtype: float32
""",
    "tokenizer_slices": """
merge_method: linear
base_model: base
slices:
  - sources:
      - model: base
        layer_range: [0, 1]
        parameters: {weight: 0.6}
      - model: expert_a
        layer_range: [1, 2]
        parameters: {weight: 0.3}
      - model: expert_b
        layer_range: [0, 1]
        parameters: {weight: 0.1}
  - sources:
      - model: base
        layer_range: [1, 2]
        parameters: {weight: 0.2}
      - model: expert_a
        layer_range: [0, 1]
        parameters: {weight: 0.3}
      - model: expert_b
        layer_range: [1, 2]
        parameters: {weight: 0.5}
tokenizer_source: union
dtype: float32
""",
    "tokenizer_block": """
merge_method: linear
base_model: expert_a
models:
  - model: expert_a
    parameters: {weight: 0.6}
  - model: expert_b
    parameters: {weight: 0.4}
tokenizer:
  source: union
  tokens:
    <new>:
      source: {kind: model_token, model: expert_b, token: <b_only>}
    <shared>:
      source: expert_a
      force: true
    "7":
      source: {kind: model_token, model: expert_a, token_id: 3}
      force: true
  pad_to_multiple_of: 8
dtype: float32
""",
}


def vocab_of(d: Path):
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(d))
    added = {t.content: (t.special, t.normalized, t.lstrip, t.rstrip, t.single_word) for t in tok.added_tokens_decoder.values()}
    return tok.get_vocab(), added


def compare(name, hm3_dir: Path, mk_dir: Path, recipe, models_dir: Path):
    failures = []
    va, added_a = vocab_of(hm3_dir)
    vb, added_b = vocab_of(mk_dir)
    if set(va) != set(vb):
        failures.append(f"tokens only HM3 has: {sorted(set(va) - set(vb))}; only mergekit: {sorted(set(vb) - set(va))}")
    source = recipe.get("tokenizer_source") or recipe.get("tokenizer", {}).get("source", "union")
    if source == "union":
        base_name = recipe.get("base_model") or recipe["models"][0]["model"]
        pinned = json.loads((models_dir / base_name / "tokenizer.json").read_text())
        pinned = set(pinned["model"]["vocab"]) | {t["content"] for t in pinned["added_tokens"]}
    else:
        pinned = set(vb)
    moved = sorted(t for t in pinned if t in va and t in vb and va[t] != vb[t])
    if moved:
        failures.append(f"ids differ for {moved[:10]}")
    if added_a != added_b:
        diff = {k: (added_a.get(k), added_b.get(k)) for k in set(added_a) | set(added_b) if added_a.get(k) != added_b.get(k)}
        failures.append(f"added tokens differ (hm3, mergekit): {diff}")
    sizes = [json.loads((d / "config.json").read_text())["vocab_size"] for d in (hm3_dir, mk_dir)]
    if sizes[0] != sizes[1]:
        failures.append(f"config.json vocab_size: HM3 {sizes[0]}, mergekit {sizes[1]}")
    ours, theirs = load_dir(hm3_dir), load_dir(mk_dir)
    if set(ours) != set(theirs):
        failures.append(f"tensor names differ: only HM3 {sorted(set(ours) - set(theirs))}, only mergekit {sorted(set(theirs) - set(ours))}")
    common = sorted(t for t in vb if t in va)
    worst, compared = 0.0, 0
    for tensor in sorted(set(ours) & set(theirs)):
        out, ref = ours[tensor].double(), theirs[tensor].double()
        if out.shape != ref.shape:
            failures.append(f"{tensor}: shape {tuple(out.shape)} vs {tuple(ref.shape)}")
            continue
        if tensor in ("model.embed_tokens.weight", "lm_head.weight"):
            a = torch.cat([out[[va[t] for t in common]], out[len(va):]])
            b = torch.cat([ref[[vb[t] for t in common]], ref[len(vb):]])
        else:
            a, b = out, ref
        scale = b.abs().max().item()
        rel = (a - b).abs().max().item() / (scale if scale > 0 else 1)
        worst, compared = max(worst, rel), compared + 1
        if rel > 1e-5:
            failures.append(f"{tensor}: max rel diff {rel:.3e}")
    return {"compared": compared, "tokens": len(vb), "rows": sizes[1], "worst": worst, "failures": failures}


def main():
    work, report = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    models_dir = work / "models"
    make_models(models_dir)
    jobs, recipes = [], {}
    for name, text in CASES.items():
        path = models_dir / f"{name}.yaml"
        path.write_text(text)
        recipes[name] = yaml.safe_load(text)
        jobs.append((path, work / f"hm3-{name}"))
    run_hm3(jobs, work)
    for name in CASES:
        run_mergekit(models_dir / f"{name}.yaml", work / f"mk-{name}")

    from importlib.metadata import version

    lines = [
        "# HM3 vs mergekit: tokenizer merges",
        "",
        f"mergekit {version('mergekit')}, transformers {version('transformers')}; random Llama checkpoints "
        f"({CONFIG['num_hidden_layers']} layers, hidden {CONFIG['hidden_size']}) with the fixture zoo's 48-token BPE "
        "tokenizer and different added tokens per model, fp32.",
        "",
        "| recipe | tensors compared | result | worst |",
        "| --- | --- | --- | --- |",
    ]
    ok = True
    for name in CASES:
        r = compare(name, work / f"hm3-{name}", work / f"mk-{name}", recipes[name], models_dir)
        ok &= not r["failures"]
        lines.append(
            f"| {name} | {r['compared']} ({r['tokens']} tokens, {r['rows']} rows) | {'pass' if not r['failures'] else 'FAIL'} | "
            f"max rel diff {r['worst']:.2e} (limit 1e-5) |"
        )
        lines += [f"|  | | {f} | |" for f in r["failures"][:10]]
    lines += ["", "How each check works: see the docstring of tools/conformance/mergekit/tokenizer_conformance.py.", ""]
    report.write_text("\n".join(lines))
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
