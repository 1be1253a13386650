"""The pymoo side of `npm run bench -- moo`: NSGA-II and MOEA/D (Tchebycheff, like @hm3/moo's) on
ZDT1/2/3 and DTLZ2, final fronts written as JSON for the TypeScript side to score with the same
hypervolume code as its own runs.

Reads a JSON config {"evaluations": int, "seeds": [int], "problems": [{"name", "population"}],
"algorithms": ["nsga2", "moead"]} and writes {"pymoo": version, "runs": [{"problem", "algorithm",
"seed", "evaluations", "seconds", "front": [[...], ...]}]}.

Usage: python pymoo_moo_bench.py CONFIG.json OUT.json [JOBS]   (JOBS parallel processes, default 2)
"""

import json
import multiprocessing
import sys
import time

import numpy as np
import pymoo
from pymoo.algorithms.moo.moead import MOEAD
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.decomposition.tchebicheff import Tchebicheff
from pymoo.optimize import minimize
from pymoo.problems import get_problem
from pymoo.util.ref_dirs import get_reference_directions


def make_problem(name: str):
    if name == "dtlz2":
        return get_problem("dtlz2", n_var=12, n_obj=3)
    return get_problem(name)  # zdt1/2/3: 30 variables


def das_dennis_for(n_obj: int, population: int) -> np.ndarray:
    partitions = 1
    while len(get_reference_directions("das-dennis", n_obj, n_partitions=partitions + 1)) <= population:
        partitions += 1
    return get_reference_directions("das-dennis", n_obj, n_partitions=partitions)


def make_algorithm(name: str, problem, population: int):
    if name == "nsga2":
        return NSGA2(pop_size=population)  # pymoo defaults: SBX(0.9, eta 15), PM(eta 20)
    if name == "moead":
        return MOEAD(
            das_dennis_for(problem.n_obj, population),
            n_neighbors=20,
            prob_neighbor_mating=0.9,
            decomposition=Tchebicheff(),
        )
    raise ValueError(f"unknown algorithm {name}")


def run_one(task):
    problem_name, population, algorithm_name, seed, evaluations = task
    problem = make_problem(problem_name)
    algorithm = make_algorithm(algorithm_name, problem, population)
    start = time.perf_counter()
    res = minimize(problem, algorithm, ("n_eval", evaluations), seed=seed, verbose=False)
    seconds = time.perf_counter() - start
    n_eval = int(res.algorithm.evaluator.n_eval)
    print(f"pymoo {problem_name} {algorithm_name} seed {seed}: {seconds:.1f}s, {n_eval} evaluations", file=sys.stderr, flush=True)
    return {
        "problem": problem_name,
        "algorithm": algorithm_name,
        "seed": seed,
        "evaluations": n_eval,
        "seconds": seconds,
        "front": np.atleast_2d(res.F).tolist(),
    }


def main(config_path: str, out_path: str, jobs: int) -> None:
    with open(config_path) as f:
        config = json.load(f)
    tasks = [
        (spec["name"], spec["population"], algorithm_name, seed, config["evaluations"])
        for spec in config["problems"]
        for algorithm_name in config["algorithms"]
        for seed in config["seeds"]
    ]
    # MOEA/D first: its runs are the long ones, so two workers finish together
    tasks.sort(key=lambda t: t[2] != "moead")
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            runs = pool.map(run_one, tasks, chunksize=1)
    else:
        runs = [run_one(t) for t in tasks]
    with open(out_path, "w") as f:
        json.dump({"pymoo": pymoo.__version__, "runs": runs}, f)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 2)
