# Times scipy BSR (CSR for 1x1 blocks) against numpy dense for bench/bsr.ts, single thread.
# Prints JSON {"<shape>|<product>|<block>|<sparsity>": speedup over numpy dense}.
# scipy's BSR needs the shape to be a multiple of the block, so ragged shapes are zero-padded
# up to the next multiple (noted in the docs); the dense reference uses the logical shape.
import json, sys
import numpy as np
import scipy.sparse as sp
from timing import fastest_time

cfg = json.loads(sys.argv[1])
rng = np.random.default_rng(0)
out = {}
for shape in cfg["shapes"]:
    name, rows, cols, n = shape["name"], shape["rows"], shape["cols"], shape["n"]
    w = rng.standard_normal((rows, cols)).astype(np.float32)
    x = rng.standard_normal((cols, n)).astype(np.float32)
    dy = rng.standard_normal((rows, n)).astype(np.float32)
    dense = {"fwd": fastest_time(lambda: w @ x), "dX": fastest_time(lambda: w.T @ dy)}
    for b in cfg["blocks"]:
        prow, pcol = -(-rows // b) * b, -(-cols // b) * b
        br, bc = prow // b, pcol // b
        for s in cfg["sparsities"]:
            keep = int(round((1 - s) * br * bc))
            mask = np.zeros(br * bc, dtype=bool)
            mask[rng.permutation(br * bc)[:keep]] = True
            wp = np.zeros((prow, pcol), dtype=np.float32)
            wp[:rows, :cols] = w
            wp *= np.kron(mask.reshape(br, bc), np.ones((b, b), dtype=np.float32))
            xp = np.zeros((pcol, n), dtype=np.float32); xp[:cols] = x
            dyp = np.zeros((prow, n), dtype=np.float32); dyp[:rows] = dy
            if keep == 0:
                continue
            m = sp.csr_matrix(wp) if b == 1 else sp.bsr_matrix(wp, blocksize=(b, b))
            t_fwd = fastest_time(lambda: m @ xp)
            t_dx = fastest_time(lambda: m.T @ dyp)
            out[f"{name}|fwd|{b}|{s}"] = dense["fwd"] / t_fwd
            out[f"{name}|dX|{b}|{s}"] = dense["dX"] / t_dx
print(json.dumps(out))
