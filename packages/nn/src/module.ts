// Module: a tree of layers, each with named parameters (Variables that require grad) and
// buffers (plain Tensors such as batch-norm running statistics, saved but never trained).
// Names are dotted paths like PyTorch's ("fc1.weight", "features.0.bias"), so state dicts
// written here read naturally next to PyTorch ones.
import { Tensor } from "@tessera/tensor";
import { Variable } from "@tessera/autograd";

function fmt(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

const NAME_RE = /^[A-Za-z0-9_]+$/;

function describeChildren(m: Module): string {
  const names = m.namedChildren().map(([n]) => JSON.stringify(n));
  return names.length === 0
    ? `${m.constructor.name} has no children`
    : `${m.constructor.name} has children ${names.join(", ")}`;
}

export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export abstract class Module {
  /** True in training mode (dropout active, batch norm uses batch statistics). */
  training = true;
  private readonly params = new Map<string, Variable>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  /** Computes the output for input `x`. */
  abstract forward(x: Variable): Variable;

  private checkName(fn: string, name: string): void {
    if (typeof name !== "string" || !NAME_RE.test(name)) {
      throw new Error(
        `${this.constructor.name}.${fn}: name must be letters, digits or _, got ${JSON.stringify(name)}`,
      );
    }
    if (this.params.has(name) || this.buffers.has(name) || this.children.has(name)) {
      throw new Error(`${this.constructor.name}.${fn}: "${name}" is already registered`);
    }
  }

  /** Adds a trainable parameter; its data should be a contiguous float tensor it owns. */
  protected registerParameter(name: string, param: Variable): Variable {
    this.checkName("registerParameter", name);
    if (!(param instanceof Variable))
      throw new Error(`${this.constructor.name}.registerParameter: "${name}" must be a Variable`);
    this.params.set(name, param);
    return param;
  }

  /** Adds a buffer: state that is saved and loaded but not trained. */
  protected registerBuffer(name: string, tensor: Tensor): Tensor {
    this.checkName("registerBuffer", name);
    if (!(tensor instanceof Tensor))
      throw new Error(`${this.constructor.name}.registerBuffer: "${name}" must be a Tensor`);
    this.buffers.set(name, tensor);
    return tensor;
  }

  /** Adds a sub-module; its parameters appear under "name.". */
  protected registerModule<M extends Module>(name: string, module: M): M {
    this.checkName("registerModule", name);
    if (!(module instanceof Module))
      throw new Error(`${this.constructor.name}.registerModule: "${name}" must be a Module`);
    this.children.set(name, module);
    return module;
  }

  /**
   * The descendant at a dotted path ("fc1", "features.0"); "" is this module. Throws naming
   * the path and the children that exist where the walk stopped.
   */
  getSubmodule(path: string): Module {
    return this.walk("getSubmodule", path, path === "" ? [] : path.split("."));
  }

  /**
   * Replaces the existing child at a dotted path with `module` (PyTorch's set_submodule for
   * an existing name): the new child keeps the old one's name and position, so state-dict
   * keys and iteration order do not move. The parent's `childReplaced` hook then lets it
   * update its own references (Sequential's `layers`, fields holding the old child). Only
   * replaces: an absent name throws, naming the path and the children that do exist; adding
   * a new name stays the job of registerModule (which throws on duplicates).
   */
  setSubmodule(path: string, module: Module): void {
    const fn = `${this.constructor.name}.setSubmodule`;
    if (!(module instanceof Module))
      throw new Error(`${fn}: the replacement for "${path}" must be a Module`);
    const parts = typeof path === "string" && path !== "" ? path.split(".") : [];
    if (parts.length === 0)
      throw new Error(`${fn}: path must name a child (e.g. "fc1"), got ${JSON.stringify(path)}`);
    const parent = this.walk("setSubmodule", path, parts.slice(0, -1));
    const name = parts[parts.length - 1]!;
    const old = parent.children.get(name);
    if (old === undefined) {
      throw new Error(
        `${fn}: no child "${name}" at "${path}"; ${describeChildren(parent)} (setSubmodule only replaces; use registerModule to add)`,
      );
    }
    if (old === module) return;
    // Map.set on an existing key keeps its insertion position.
    parent.children.set(name, module);
    parent.childReplaced(name, old, module);
  }

  /**
   * Called after setSubmodule replaced the child `name`. The default points every own field
   * of this module that held the old child at the new one (so `this.fc1 =
   * this.registerModule("fc1", ...)` keeps working in forward); override, calling super, when
   * the child is also held elsewhere (Sequential updates its `layers` array).
   */
  protected childReplaced(name: string, old: Module, replacement: Module): void {
    void name;
    const self = this as unknown as Record<string, unknown>;
    for (const key of Object.keys(self)) if (self[key] === old) self[key] = replacement;
  }

  private walk(fn: string, path: string, parts: string[]): Module {
    let m = this as Module;
    for (let i = 0; i < parts.length; i++) {
      const next = m.children.get(parts[i]!);
      if (next === undefined) {
        const at = parts.slice(0, i).join(".");
        throw new Error(
          `${this.constructor.name}.${fn}: no submodule "${path}": "${parts[i]}" is not a child of ${at === "" ? "the root" : `"${at}"`}; ${describeChildren(m)}`,
        );
      }
      m = next;
    }
    return m;
  }

  /** Direct sub-modules with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.children.entries()];
  }

  /** This module and every descendant, depth first, with dotted names ("" for this one). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, m] of this.children)
      out.push(...m.namedModules(prefix === "" ? name : `${prefix}.${name}`));
    return out;
  }

  /** Every parameter of this module and its descendants, with dotted names. */
  namedParameters(): [string, Variable][] {
    const out: [string, Variable][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m.params) out.push([prefix === "" ? name : `${prefix}.${name}`, p]);
    }
    return out;
  }

  /** The parameter with this dotted name; throws naming the known names if absent. */
  getParameter(name: string): Variable {
    const all = this.namedParameters();
    const hit = all.find(([n]) => n === name);
    if (hit === undefined) {
      throw new Error(
        `${this.constructor.name}.getParameter: no parameter "${name}"; have ${all.map(([n]) => n).join(", ")}`,
      );
    }
    return hit[1];
  }

  parameters(): Variable[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, b] of m.buffers) out.push([prefix === "" ? name : `${prefix}.${name}`, b]);
    }
    return out;
  }

  /** Total number of parameter elements (weights and biases). */
  numParameters(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.data.size;
    return n;
  }

  /** Sets training mode on this module and all descendants. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  /** Evaluation mode: dropout off, batch norm uses running statistics. */
  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /**
   * Parameters' and buffers' tensors by dotted name, in registration order. The tensors are
   * the live ones (not copies): serialise them before training on.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [name, p] of this.namedParameters()) out.set(name, p.data);
    for (const [name, b] of this.namedBuffers()) out.set(name, b);
    return out;
  }

  /**
   * Copies values into the existing parameter and buffer storage (so optimizers and masks
   * holding references keep working). Every shape must match: the error names the key and
   * both shapes. With `strict` (default) missing or unexpected keys throw; otherwise they are
   * returned. Nothing is modified unless every check passes.
   */
  loadStateDict(
    state: Map<string, Tensor> | Record<string, Tensor>,
    options: { strict?: boolean } = {},
  ): LoadStateDictResult {
    const fn = `${this.constructor.name}.loadStateDict`;
    const strict = options.strict ?? true;
    const entries = state instanceof Map ? state : new Map(Object.entries(state));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !entries.has(k));
    const unexpectedKeys = [...entries.keys()].filter((k) => !own.has(k));
    if (strict && (missingKeys.length > 0 || unexpectedKeys.length > 0)) {
      const parts: string[] = [];
      if (missingKeys.length > 0) parts.push(`missing keys: ${missingKeys.join(", ")}`);
      if (unexpectedKeys.length > 0) parts.push(`unexpected keys: ${unexpectedKeys.join(", ")}`);
      throw new Error(`${fn}: state dict does not match the model (${parts.join("; ")})`);
    }
    const copies: [Tensor, Tensor][] = [];
    for (const [key, target] of own) {
      const src = entries.get(key);
      if (src === undefined) continue;
      if (!(src instanceof Tensor)) throw new Error(`${fn}: value for "${key}" must be a Tensor`);
      if (!sameShape(src.shape, target.shape)) {
        throw new Error(
          `${fn}: shape mismatch for "${key}": checkpoint has ${fmt(src.shape)}, model has ${fmt(target.shape)}`,
        );
      }
      // copyFrom would convert (int32 bits read as weights, float64 rounded): a checkpoint
      // whose dtype differs from the model's is refused, not reinterpreted.
      if (src.dtype !== target.dtype) {
        throw new Error(
          `${fn}: dtype mismatch for "${key}": checkpoint has ${src.dtype}, model has ${target.dtype}`,
        );
      }
      copies.push([target, src]);
    }
    for (const [target, src] of copies) target.copyFrom(src);
    return { missingKeys, unexpectedKeys };
  }
}
