"""HM3 vs mergekit: merge small random Llama-shaped checkpoints with both and compare per tensor.

Usage: python conformance.py WORK_DIR REPORT.md  (run by conformance.test.ts through ensure-mergekit.sh)

Deterministic methods (linear, task_arithmetic, ties, breadcrumbs, breadcrumbs_ties, slerp, nuslerp,
multislerp, karcher, model_stock, sce, nearswap, passthrough, and frankenmerges: `slices` stacking layer
ranges, passthrough or a method per slice with gradients interpolated within each slice), with gradient
lists and {filter, value} lists, must agree per tensor within 1e-5 relative in fp32, with the same
tensor names (and, for slices, the same num_hidden_layers in config.json):
max|hm3 - mergekit| <= 1e-5 * max|mergekit|. Breadcrumbs tensors where int(gamma * n) = 0 are listed
and not compared (mergekit wipes those deltas; HM3 does not, by design).

DARE (dare_linear, dare_ties) and DELLA (della_linear, della) draw random masks (DELLA's keep
probability rises with the |delta| rank in a row but averages to density), and the two tools use different generators (HM3:
Philox keyed by seed, tensor and model; mergekit: torch's global RNG), so they agree in distribution,
not in bits. The statistical test, per tensor, over S seeds of each tool:
  1. kept fraction: for one expert at weight 1, the fraction of entries of (out - base) that are
     non-zero is within 5 binomial standard deviations of density, for each run of both tools;
  2. mean: with a and b the per-element means over S runs and s_a^2, s_b^2 the sample variances,
     T = sum_i (a_i - b_i) / sqrt(sum_i (s_a,i^2 + s_b,i^2) / S) is ~N(0, 1) when both tools have the
     same expectation; |T| < 5 passes;
  3. spread: R = sum_i s_a,i^2 / sum_i s_b,i^2 (the variance of the mask noise of each tool) has
     |log R| < 5 * sqrt(2/df_a + 2/df_b), df = (S - 1) (sum_i s_i^2)^2 / sum_i s_i^4 the effective
     degrees of freedom of the summed sample variances; the same check on all tensors pooled.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 4,
    "vocab_size": 64,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
}


def llama_shapes(c):
    h, i, hd = c["hidden_size"], c["intermediate_size"], c["hidden_size"] // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd
    shapes = {"model.embed_tokens.weight": (c["vocab_size"], h)}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes.update({
            p + "input_layernorm.weight": (h,),
            p + "self_attn.q_proj.weight": (q, h),
            p + "self_attn.k_proj.weight": (kv, h),
            p + "self_attn.v_proj.weight": (kv, h),
            p + "self_attn.o_proj.weight": (h, q),
            p + "post_attention_layernorm.weight": (h,),
            p + "mlp.gate_proj.weight": (i, h),
            p + "mlp.up_proj.weight": (i, h),
            p + "mlp.down_proj.weight": (h, i),
        })
    shapes["model.norm.weight"] = (h,)
    shapes["lm_head.weight"] = (c["vocab_size"], h)
    return shapes


def make_models(root: Path):
    g = torch.Generator().manual_seed(1234)
    shapes = llama_shapes(CONFIG)
    base = {n: torch.randn(s, generator=g) * 0.05 for n, s in shapes.items()}
    models = {"base": base}
    for k, name in enumerate(["expert_a", "expert_b", "expert_c"]):
        models[name] = {n: t + torch.randn(t.shape, generator=g) * (0.01 * (k + 1)) for n, t in base.items()}
    for name, tensors in models.items():
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        save_file({n: t.contiguous() for n, t in tensors.items()}, str(d / "model.safetensors"), metadata={"format": "pt"})
        (d / "config.json").write_text(json.dumps(CONFIG))


EXACT = {
    "linear": """
merge_method: linear
models:
  - model: expert_a
    parameters:
      weight: [1.0, 0.2]
  - model: expert_b
    parameters:
      weight:
        - filter: mlp
          value: 0.7
        - value: 0.4
  - model: expert_c
    parameters:
      weight: 0.3
dtype: float32
""",
    "task_arithmetic": """
merge_method: task_arithmetic
base_model: base
models:
  - model: base
  - model: expert_a
    parameters:
      weight: [0.2, 1.0, 0.5]
  - model: expert_b
    parameters:
      weight:
        - filter: self_attn
          value: [1.0, 0.0]
        - value: 0.6
parameters:
  lambda: 0.8
dtype: float32
""",
    "ties": """
merge_method: ties
base_model: base
models:
  - model: expert_a
    parameters:
      weight: 1.0
      density: [0.3, 0.8]
  - model: expert_b
    parameters:
      weight:
        - filter: mlp
          value: 0.8
        - value: 0.3
      density: 0.5
  - model: expert_c
    parameters:
      weight: 0.7
      density:
        - filter: self_attn
          value: 0.4
        - value: 0.6
dtype: float32
""",
    "ties_unnormalized_rescaled": """
merge_method: ties
base_model: base
models:
  - model: expert_a
    parameters: {weight: 0.6, density: 0.5}
  - model: expert_b
    parameters: {weight: 0.9, density: 0.7}
parameters:
  normalize: false
  rescale: true
  lambda: 1.2
dtype: float32
""",
    "breadcrumbs": """
merge_method: breadcrumbs
base_model: base
models:
  - model: expert_a
    parameters: {weight: 0.6, density: [0.7, 0.9], gamma: 0.05}
  - model: expert_b
    parameters: {weight: 0.5, density: 0.8, gamma: 0.04}
dtype: float32
""",
    "breadcrumbs_ties": """
merge_method: breadcrumbs_ties
base_model: base
models:
  - model: expert_a
    parameters: {weight: 1.0, density: 0.8, gamma: 0.05}
  - model: expert_b
    parameters: {weight: 0.7, density: 0.7, gamma: 0.05}
  - model: expert_c
    parameters: {weight: 0.4, density: 0.9, gamma: 0.1}
parameters:
  normalize: true
dtype: float32
""",
    "nuslerp": """
merge_method: nuslerp
base_model: base
models:
  - model: expert_a
    parameters:
      weight: [0.2, 0.8]
  - model: expert_b
    parameters:
      weight: 0.6
dtype: float32
""",
    "nuslerp_rows_no_base": """
merge_method: nuslerp
models:
  - model: expert_a
    parameters: {weight: 0.3}
  - model: expert_c
    parameters: {weight: 0.7}
parameters:
  nuslerp_flatten: false
dtype: float32
""",
    "nuslerp_columns": """
merge_method: nuslerp
base_model: base
models:
  - model: expert_b
    parameters: {weight: 0.5}
  - model: expert_c
    parameters: {weight: 0.25}
parameters:
  nuslerp_flatten: false
  nuslerp_row_wise: true
dtype: float32
""",
    "multislerp": """
merge_method: multislerp
base_model: base
models:
  - model: expert_a
    parameters: {weight: 0.5}
  - model: expert_b
    parameters:
      weight:
        - filter: mlp
          value: 0.2
        - value: 0.9
  - model: expert_c
    parameters: {weight: 0.3}
dtype: float32
""",
    "multislerp_no_base": """
merge_method: multislerp
models:
  - model: expert_a
    parameters: {weight: 1.0}
  - model: expert_c
    parameters: {weight: 2.0}
dtype: float32
""",
    "karcher": """
merge_method: karcher
models:
  - model: base
  - model: expert_a
  - model: expert_b
  - model: expert_c
parameters:
  max_iter: 20
dtype: float32
""",
    "model_stock": """
merge_method: model_stock
base_model: base
models:
  - model: expert_a
  - model: expert_b
  - model: expert_c
dtype: float32
""",
    "model_stock_filter_wise": """
merge_method: model_stock
base_model: base
models:
  - model: expert_a
  - model: expert_b
parameters:
  filter_wise: true
dtype: float32
""",
    "sce": """
merge_method: sce
base_model: base
models:
  - model: expert_a
  - model: expert_b
  - model: expert_c
dtype: float32
""",
    "sce_topk": """
merge_method: sce
base_model: base
models:
  - model: expert_a
  - model: expert_b
  - model: expert_c
parameters:
  select_topk: 0.4
dtype: float32
""",
    "nearswap": """
merge_method: nearswap
base_model: base
models:
  - model: base
  - model: expert_c
parameters:
  t: 0.02
dtype: float32
""",
    "passthrough": """
merge_method: passthrough
models:
  - model: expert_b
    parameters:
      scale:
        - filter: mlp
          value: [0.5, 2.0]
        - value: 1.0
dtype: float32
""",
    "frankenmerge_passthrough": """
merge_method: passthrough
slices:
  - sources:
      - model: expert_a
        layer_range: [0, 3]
  - sources:
      - model: expert_b
        layer_range: [1, 4]
  - sources:
      - model: base
        layer_range: [2, 4]
dtype: float32
""",
    "frankenmerge_three_slices": """
merge_method: linear
slices:
  - sources:
      - model: expert_a
        layer_range: [0, 2]
        parameters:
          weight: [1.0, 0.0]
      - model: expert_b
        layer_range: [0, 2]
        parameters:
          weight: [0.0, 1.0]
  - sources:
      - model: expert_a
        layer_range: [1, 4]
        parameters:
          weight: [0.2, 0.8]
      - model: expert_c
        layer_range: [0, 3]
        parameters:
          weight:
            - filter: mlp
              value: [0.9, 0.1]
            - value: 0.5
  - sources:
      - model: base
        layer_range: [3, 4]
        parameters:
          weight: [0.3, 0.7]
      - model: expert_b
        layer_range: [2, 3]
        parameters:
          weight: 0.6
dtype: float32
""",
    "frankenmerge_slerp": """
merge_method: slerp
base_model: base
slices:
  - sources:
      - model: base
        layer_range: [0, 4]
      - model: expert_c
        layer_range: [0, 4]
parameters:
  t:
    - filter: self_attn
      value: [0.0, 0.5, 0.3, 1.0]
    - value: 0.5
dtype: float32
""",
    "slerp": """
merge_method: slerp
base_model: base
models:
  - model: base
  - model: expert_c
parameters:
  t:
    - filter: self_attn
      value: [0.0, 0.5, 0.3, 1.0]
    - filter: mlp
      value: [1.0, 0.5, 0.7, 0.0]
    - value: 0.5
dtype: float32
""",
}

DARE = {
    "dare_linear": """
merge_method: dare_linear
base_model: base
models:
  - model: expert_c
    parameters: {weight: 1.0, density: 0.4}
dtype: float32
""",
    "dare_ties": """
merge_method: dare_ties
base_model: base
models:
  - model: expert_a
    parameters: {weight: 1.0, density: 0.5}
  - model: expert_c
    parameters: {weight: 0.6, density: 0.5}
dtype: float32
""",
    "della_linear": """
merge_method: della_linear
base_model: base
models:
  - model: expert_c
    parameters: {weight: 1.0, density: 0.4, epsilon: 0.2}
dtype: float32
""",
    "della": """
merge_method: della
base_model: base
models:
  - model: expert_a
    parameters: {weight: 1.0, density: 0.5, epsilon: 0.1}
  - model: expert_c
    parameters: {weight: 0.6, density: 0.5, epsilon: 0.1}
dtype: float32
""",
}
DARE_SEEDS = [11, 22, 33, 44, 55, 66]


def run_mergekit(recipe_path: Path, out: Path, seed=None):
    from mergekit.config import MergeConfiguration
    from mergekit.merge import MergeOptions, run_merge

    doc = yaml.safe_load(recipe_path.read_text())
    doc.pop("seed", None)
    cwd = os.getcwd()
    os.chdir(recipe_path.parent)  # model paths are relative to the recipe
    try:
        run_merge(
            MergeConfiguration.model_validate(doc),
            str(out),
            options=MergeOptions(copy_tokenizer=False, write_model_card=False, random_seed=seed, quiet=True),
        )
    finally:
        os.chdir(cwd)


def run_hm3(jobs, work: Path):
    jobs_file = work / "hm3-jobs.json"
    jobs_file.write_text(json.dumps([{"recipe": str(r), "out": str(o)} for r, o in jobs]))
    tsx = REPO / "node_modules" / ".bin" / "tsx"
    subprocess.run([str(tsx), str(HERE / "run-hm3.ts"), str(jobs_file)], check=True, cwd=REPO)


def compare_exact(name, hm3_dir: Path, mk_dir: Path, recipe):
    ours, theirs = load_file(str(hm3_dir / "model.safetensors")), load_dir(mk_dir)
    rows, failures, skipped = [], [], []
    gammas = [float(m.get("parameters", {}).get("gamma", 0.01)) for m in recipe.get("models", [])]
    for tensor, ref in sorted(theirs.items()):
        if tensor not in ours:
            failures.append(f"{tensor}: missing from HM3's output")
            continue
        out = ours[tensor]
        if name.startswith("breadcrumbs") and any(int(g * ref.numel()) == 0 for g in gammas):
            skipped.append(tensor)
            continue
        if out.shape != ref.shape:
            failures.append(f"{tensor}: shape {tuple(out.shape)} vs {tuple(ref.shape)}")
            continue
        err = (out.double() - ref.double()).abs().max().item()
        scale = ref.double().abs().max().item()
        rel = err / scale if scale > 0 else err
        rows.append(rel)
        if rel > 1e-5:
            failures.append(f"{tensor}: max|diff| {err:.3e} = {rel:.3e} x max|ref|")
    extra = sorted(set(ours) - set(theirs))
    if extra:
        failures.append(f"tensors only HM3 wrote: {extra}")
    if "slices" in recipe:
        layers = [json.loads((d / "config.json").read_text())["num_hidden_layers"] for d in (hm3_dir, mk_dir)]
        if layers[0] != layers[1]:
            failures.append(f"config.json num_hidden_layers: HM3 {layers[0]}, mergekit {layers[1]}")
    return {"compared": len(rows), "worst": max(rows) if rows else 0.0, "skipped": skipped, "failures": failures}


def load_dir(d: Path):
    out = {}
    for f in sorted(d.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def spread_ok(va, vb, S):
    """Whether two sums of per-element sample variances (S runs each) agree within 5 sd of log R."""
    sa, sb = va.sum().item(), vb.sum().item()
    if sa == 0 and sb == 0:
        return True, 1.0
    if sa == 0 or sb == 0:
        return False, 0.0 if sa == 0 else math.inf
    df = lambda v: (S - 1) * v.sum().item() ** 2 / max((v**2).sum().item(), 1e-300)
    bound = 5 * math.sqrt(2 / df(va) + 2 / df(vb))
    ratio = sa / sb
    return abs(math.log(ratio)) < bound, ratio


def compare_dare(name, hm3_dirs, mk_dirs, base, recipe):
    models = recipe["models"]
    density = float(models[0]["parameters"]["density"])
    single = len(models) == 1
    ours = [load_file(str(d / "model.safetensors")) for d in hm3_dirs]
    theirs = [load_dir(d) for d in mk_dirs]
    failures, worst_t, spreads, pooled_a, pooled_b = [], 0.0, [], [], []
    S = len(ours)
    for tensor in sorted(theirs[0]):
        a = torch.stack([o[tensor].double() for o in ours])
        b = torch.stack([t[tensor].double() for t in theirs])
        n = a[0].numel()
        if single:
            for tool, runs in (("hm3", a), ("mergekit", b)):
                for r in runs:
                    kept = (r - base[tensor].double()).ne(0).double().mean().item()
                    sd = math.sqrt(density * (1 - density) / n)
                    if abs(kept - density) > 5 * sd:
                        failures.append(f"{tensor}: {tool} kept {kept:.4f} of entries, density {density}")
        va, vb = a.var(dim=0, unbiased=True), b.var(dim=0, unbiased=True)
        denom = math.sqrt(((va + vb) / S).sum().item())
        if denom == 0:
            continue
        t = (a.mean(0) - b.mean(0)).sum().item() / denom
        worst_t = max(worst_t, abs(t))
        if abs(t) >= 5:
            failures.append(f"{tensor}: mean difference T = {t:.2f}")
        ok_spread, ratio = spread_ok(va, vb, S)
        spreads.append(ratio)
        if not ok_spread:
            failures.append(f"{tensor}: variance ratio hm3/mergekit {ratio:.3f}")
        pooled_a.append(va.flatten())
        pooled_b.append(vb.flatten())
    ok_spread, ratio = spread_ok(torch.cat(pooled_a), torch.cat(pooled_b), S)
    if not ok_spread:
        failures.append(f"all tensors: variance ratio hm3/mergekit {ratio:.3f}")
    return {"compared": len(theirs[0]), "worst_T": worst_t, "spread": (min(spreads), max(spreads)) if spreads else (1, 1), "failures": failures}


def main():
    work, report = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    work.mkdir(parents=True, exist_ok=True)
    models_dir = work / "models"
    make_models(models_dir)
    recipes = {}
    for name, text in {**EXACT, **DARE}.items():
        recipes[name] = yaml.safe_load(text)
    jobs, mk_runs = [], []
    for name, text in EXACT.items():
        path = models_dir / f"{name}.yaml"
        path.write_text(text)
        jobs.append((path, work / f"hm3-{name}"))
        mk_runs.append((path, work / f"mk-{name}", None))
    for name, text in DARE.items():
        for seed in DARE_SEEDS:
            path = models_dir / f"{name}-{seed}.yaml"
            path.write_text(text + f"seed: {seed}\n")
            jobs.append((path, work / f"hm3-{name}-{seed}"))
            mk_runs.append((path, work / f"mk-{name}-{seed}", seed))
    run_hm3(jobs, work)
    for path, out, seed in mk_runs:
        run_mergekit(path, out, seed)

    import mergekit.merge  # noqa: F401 (version below)
    from importlib.metadata import version

    lines = [
        "# HM3 vs mergekit conformance",
        "",
        f"mergekit {version('mergekit')}, torch {torch.__version__}; random Llama-shaped checkpoints "
        f"({CONFIG['num_hidden_layers']} layers, hidden {CONFIG['hidden_size']}, vocab {CONFIG['vocab_size']}), fp32.",
        "",
        "| recipe | tensors compared | result | worst |",
        "| --- | --- | --- | --- |",
    ]
    ok = True
    for name in EXACT:
        r = compare_exact(name, work / f"hm3-{name}", work / f"mk-{name}", recipes[name])
        ok &= not r["failures"]
        note = f" ({len(r['skipped'])} skipped: int(gamma*n) = 0)" if r["skipped"] else ""
        lines.append(f"| {name} | {r['compared']}{note} | {'pass' if not r['failures'] else 'FAIL'} | max rel diff {r['worst']:.2e} (limit 1e-5) |")
        lines += [f"|  | | {f} | |" for f in r["failures"][:10]]
    base = load_file(str(models_dir / "base" / "model.safetensors"))
    for name in DARE:
        r = compare_dare(
            name,
            [work / f"hm3-{name}-{s}" for s in DARE_SEEDS],
            [work / f"mk-{name}-{s}" for s in DARE_SEEDS],
            base,
            recipes[name],
        )
        ok &= not r["failures"]
        lines.append(
            f"| {name} | {r['compared']} x {len(DARE_SEEDS)} seeds | {'pass' if not r['failures'] else 'FAIL'} | "
            f"max abs T {r['worst_T']:.2f} (limit 5), variance ratio {r['spread'][0]:.2f}..{r['spread'][1]:.2f} |"
        )
        lines += [f"|  | | {f} | |" for f in r["failures"][:10]]
    lines += ["", "How each check works: see the docstring of tools/conformance/mergekit/conformance.py.", ""]
    report.write_text("\n".join(lines))
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
