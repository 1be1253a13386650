"""Reference results from pymoo for @hm3/moo's conformance test.

Reads a JSON file {"cases": [{"points": [[...], ...], "reference": [...]}]} in which every objective
is MAXIMISED (HM3's convention), and writes {"pymoo": version, "cases": [{"fronts": [[i, ...], ...],
"hv": float}]}: pymoo's non-dominated sorting and exact hypervolume. pymoo minimises, so points and
reference are negated first.

Usage: python pymoo_conformance.py IN.json OUT.json
"""

import json
import sys

import numpy as np
import pymoo
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting


def main(src: str, dst: str) -> None:
    with open(src) as f:
        cases = json.load(f)["cases"]
    nds = NonDominatedSorting()
    out = []
    for case in cases:
        points = -np.asarray(case["points"], dtype=float)
        reference = -np.asarray(case["reference"], dtype=float)
        fronts = nds.do(points)
        hv = HV(ref_point=reference)(points)
        out.append({"fronts": [sorted(int(i) for i in front) for front in fronts], "hv": float(hv)})
    with open(dst, "w") as f:
        json.dump({"pymoo": pymoo.__version__, "cases": out}, f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
