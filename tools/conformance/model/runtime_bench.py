"""PyTorch (transformers, fp32, CPU) side of `npm run bench -- runtime`.

  runtime_bench.py SPEC OUT   SPEC = {"model": dir, "threads": n, "repeats": r, "new_tokens": n,
                              "cases": [{"batch": b, "prompts": [[id]]}]}
                              OUT  = {"cases": [{"batch", "generate_s": [..], "score_s": [..],
                                                 "generate_cpu_s": [..], "score_cpu_s": [..]}]}
Greedy generation: model.generate (KV cache, exactly new_tokens tokens). Scoring: one teacher-forced
forward pass over the (equal-length) prompts. One warm-up run of each, then `repeats` timed runs, each
timed in wall-clock seconds and in CPU seconds of this process (time.process_time: all its threads).
"""
import json
import sys
import time

import torch
from transformers import AutoModelForCausalLM


@torch.no_grad()
def main(spec_file, out_file):
    spec = json.load(open(spec_file))
    torch.set_num_threads(spec["threads"])
    model = AutoModelForCausalLM.from_pretrained(spec["model"], dtype=torch.float32).eval()
    out = {"torch": torch.__version__, "cases": []}
    for case in spec["cases"]:
        ids = torch.tensor(case["prompts"])
        mask = torch.ones_like(ids)

        def generate():
            return model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=spec["new_tokens"],
                                  min_new_tokens=spec["new_tokens"], eos_token_id=None, pad_token_id=0)

        def score():
            return model(ids, attention_mask=mask).logits

        timings = {}
        for name, fn in (("generate_s", generate), ("score_s", score)):
            fn()
            runs, cpu = [], []
            for _ in range(spec["repeats"]):
                t, c = time.perf_counter(), time.process_time()
                fn()
                runs.append(time.perf_counter() - t)
                cpu.append(time.process_time() - c)
            timings[name] = runs
            timings[name.replace("_s", "_cpu_s")] = cpu
        out["cases"].append({"batch": case["batch"], **timings})
    json.dump(out, open(out_file, "w"))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
