// Checks the README's "Opening a pruned checkpoint in PyTorch" lines: saves a pruned
// LeNet-300-100 with savePruned (4x4 tiles on fc1/fc2, rows with pruneBias on fc3, one
// round of the paper's rule), then runs the README's python block on it with the python
// given (default python3). The numpy part always runs; the torch part only where torch
// imports, and then the pruned module's weights are compared with ours.
//   npx tsx packages/pruning/scripts/check-pytorch-open.ts /path/to/python3
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Generator } from "@tessera/tensor";
import { lenet300100 } from "@tessera/nn";
import { PruningState, savePruned } from "../src/index.ts";

const python = process.argv[2] ?? "python3";
const readme = readFileSync(fileURLToPath(new URL("../README.md", import.meta.url)), "utf8");
const block = /### Opening a pruned checkpoint in PyTorch[\s\S]*?```python\n([\s\S]*?)```/.exec(
  readme,
)?.[1];
if (block === undefined)
  throw new Error("check-pytorch-open: the README's python block is missing");

const dir = mkdtempSync(join(tmpdir(), "tessera-pytorch-open-"));
const model = lenet300100({ generator: new Generator(1) });
const block4 = { kind: "block", rows: 4, cols: 4 } as const;
const state = new PruningState(model, {
  "fc1.weight": block4,
  "fc2.weight": block4,
  "fc3.weight": { kind: "row", pruneBias: true },
});
state.pruneFraction({ "fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1 });
savePruned(join(dir, "lenet.safetensors"), model, state);
// Our weights, for the comparison on the torch side.
const ours: Record<string, number[]> = {};
for (const [n, p] of model.namedParameters()) ours[n] = Array.from(p.data.data);
writeFileSync(join(dir, "ours.json"), JSON.stringify(ours));

const [numpyPart] = block.split("from collections import OrderedDict");
const check = `
import json, importlib.util
${numpyPart}
want = {"fc1.weight_orig", "fc1.weight_mask", "fc1.bias", "fc2.weight_orig", "fc2.weight_mask",
        "fc2.bias", "fc3.weight_orig", "fc3.weight_mask", "fc3.bias_orig", "fc3.bias_mask"}
assert set(arrays) == want, sorted(set(arrays) ^ want)
for k in ["fc1.weight", "fc2.weight", "fc3.weight", "fc3.bias"]:
    o, m = arrays[k + "_orig"], arrays[k + "_mask"]
    assert o.shape == m.shape and set(np.unique(m).tolist()) <= {0.0, 1.0}
    assert np.all(o[m == 0] == 0)
    print(k, list(o.shape), "mask density %.4f" % m.mean())
if importlib.util.find_spec("torch") is None:
    print("torch: not installed, torch lines not run")
else:
    exec(${JSON.stringify(block)})
    ours = json.load(open("ours.json"))
    for key in ["fc1.weight", "fc2.weight", "fc3.weight", "fc3.bias", "fc1.bias"]:
        mod, param = key.rsplit(".", 1)
        got = getattr(model.get_submodule(mod), param).detach().numpy().ravel()
        assert np.array_equal(got, np.array(ours[key], dtype=np.float32)), key
    print("torch: loaded as a pruned module; weights equal ours")
`;
writeFileSync(join(dir, "check.py"), check);
process.stdout.write(execFileSync(python, ["check.py"], { cwd: dir, encoding: "utf8" }));
