# Times PyTorch float32 products for bench/dense.ts with torch.set_num_threads(argv[2]); prints
# JSON {label: GFLOP/s}. The transposed operands are views (.t()), as a model's Linear uses them.
import json, sys
import torch
from timing import best_rate

torch.set_num_threads(int(sys.argv[2]))
g = torch.Generator().manual_seed(0)
out = {}
with torch.no_grad():
    for spec in json.loads(sys.argv[1]):
        label, op, m, k, n = spec["label"], spec["op"], spec["m"], spec["k"], spec["n"]
        if op == "matmul":
            a = torch.rand(m, k, generator=g); b = torch.rand(k, n, generator=g)
            f = lambda: torch.mm(a, b)
        elif op == "matmulTransA":
            a = torch.rand(k, m, generator=g); b = torch.rand(k, n, generator=g)
            f = lambda: torch.mm(a.t(), b)
        else:
            a = torch.rand(m, k, generator=g); b = torch.rand(n, k, generator=g)
            f = lambda: torch.mm(a, b.t())
        out[label] = best_rate(f, 2 * m * k * n)
print(json.dumps(out))
