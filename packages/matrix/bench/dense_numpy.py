# Times numpy float32 products for bench/dense.ts; prints JSON {label: GFLOP/s}.
import json, sys
import numpy as np
from timing import best_rate

rng = np.random.default_rng(0)
out = {}
for spec in json.loads(sys.argv[1]):
    label, op, m, k, n = spec["label"], spec["op"], spec["m"], spec["k"], spec["n"]
    if op == "matmul":
        a = rng.random((m, k), dtype=np.float32); b = rng.random((k, n), dtype=np.float32)
        f = lambda: a @ b
    elif op == "matmulTransA":
        a = rng.random((k, m), dtype=np.float32); b = rng.random((k, n), dtype=np.float32)
        f = lambda: a.T @ b
    else:
        a = rng.random((m, k), dtype=np.float32); b = rng.random((n, k), dtype=np.float32)
        f = lambda: a @ b.T
    out[label] = best_rate(f, 2 * m * k * n)
print(json.dumps(out))
