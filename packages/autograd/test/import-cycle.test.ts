// The package's modules must not import each other in a cycle (type-only imports aside): with
// variable.ts <-> record.ts <-> ops/*, one top-level constant built with toVariable in an op
// file made importing the package throw "Cannot access 'Variable' before initialization".
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const pkg = fileURLToPath(new URL("../", import.meta.url));
const src = join(pkg, "src");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? sourceFiles(join(dir, e.name))
      : e.name.endsWith(".ts")
        ? [join(dir, e.name)]
        : [],
  );
}

/** Relative modules a file imports at run time (`import type` and `export type` left out). */
function valueImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  const re = /^(?:import|export)\s+(type\s+)?(?:[^;]*?\sfrom\s+)?"(\.[^"]+)";/gms;
  for (const m of text.matchAll(re))
    if (m[1] === undefined) out.push(resolve(dirname(file), m[2]!));
  return out;
}

/** One import cycle among `files` as a list of paths relative to src/, or null. */
function findCycle(files: string[]): string[] | null {
  const edges = new Map(files.map((f) => [f, valueImports(f)]));
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (f: string): string[] | null => {
    if (state.get(f) === "done") return null;
    if (state.get(f) === "open") return [...stack.slice(stack.indexOf(f)), f];
    state.set(f, "open");
    stack.push(f);
    for (const g of edges.get(f) ?? []) {
      const c = visit(g);
      if (c !== null) return c;
    }
    stack.pop();
    state.set(f, "done");
    return null;
  };
  for (const f of files) {
    const c = visit(f);
    if (c !== null) return c.map((p) => relative(src, p));
  }
  return null;
}

describe("@tessera/autograd module graph", () => {
  it("has no run-time import cycle", () => {
    expect(findCycle(sourceFiles(src))).toBeNull();
  });

  it("the cycle finder sees a planted cycle", () => {
    const d = mkdtempSync(join(pkg, ".cycle-"));
    try {
      writeFileSync(join(d, "a.ts"), 'import { b } from "./b.ts";\nexport const a = 1;\n');
      writeFileSync(
        join(d, "b.ts"),
        'import type { x } from "./c.ts";\nexport { a } from "./a.ts";\n',
      );
      writeFileSync(join(d, "c.ts"), 'import { b } from "./b.ts";\n');
      const files = ["a.ts", "b.ts", "c.ts"].map((f) => join(d, f));
      const c = findCycle(files);
      expect(c?.map((p) => p.split("/").pop())).toEqual(["a.ts", "b.ts", "a.ts"]);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });

  it("loads when every op module builds a Variable at top level", () => {
    // A copy of src/ inside the package (so @tessera/tensor still resolves), each op file given
    // a top-level constant made with toVariable, then the copy's index imported in a child.
    const d = mkdtempSync(join(pkg, ".probe-"));
    try {
      cpSync(src, join(d, "src"), { recursive: true });
      const ops = join(d, "src", "ops");
      for (const f of readdirSync(ops)) {
        const p = join(ops, f);
        writeFileSync(
          p,
          readFileSync(p, "utf8") +
            `\nimport { toVariable as probeToVariable } from "../record.ts";\n` +
            `export const PROBE = probeToVariable("probe", 1);\n`,
        );
      }
      const entry = join(d, "src", "index.ts");
      const r = spawnSync(
        process.execPath,
        [
          "--import",
          "tsx",
          "-e",
          `import(${JSON.stringify(entry)}).then((m) => console.log(typeof m.Variable, typeof new m.Variable(m.toVariable("x", 2).data).add))`,
        ],
        { cwd: pkg, encoding: "utf8", timeout: 60_000 },
      );
      expect(r.stderr).toBe("");
      expect(r.stdout.trim()).toBe("function function");
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
