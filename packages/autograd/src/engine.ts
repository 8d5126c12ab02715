// The backward pass: topological order by an explicit stack (deep graphs such as long
// unrolled loops must not overflow the JS call stack), then one walk in reverse that hands
// each node its summed output gradient. Each node is freed right after it has run, so the
// tensors its backward closure saved become garbage as soon as possible.
import type { Tensor } from "@tessera/tensor";
import type { Variable } from "./variable.ts";
import { adoptFresh, fmt, sameShape } from "./util.ts";
import { activeArena } from "./arena.ts";

/** Parents (that need a gradient) of `v`, or none for leaves. */
function children(v: Variable): readonly Variable[] {
  return v._node === null ? [] : v._node.parents;
}

/** Post-order DFS from `root` over nodes that require grad: parents come before users. */
function topoOrder(root: Variable): Variable[] {
  const order: Variable[] = [];
  const seen = new Set<Variable>([root]);
  const stack: Variable[] = [root];
  const next: number[] = [0];
  while (stack.length > 0) {
    const top = stack.length - 1;
    const v = stack[top]!;
    const ps = children(v);
    const i = next[top]!;
    if (i < ps.length) {
      next[top] = i + 1;
      const p = ps[i]!;
      if (p.requiresGrad && !seen.has(p)) {
        seen.add(p);
        stack.push(p);
        next.push(0);
      }
    } else {
      stack.pop();
      next.pop();
      order.push(v);
    }
  }
  return order;
}

/** Pending gradients of interior nodes; `owned` marks sums we allocated (safe to add into). */
class GradTable {
  private readonly grads = new Map<Variable, Tensor>();
  private readonly owned = new Set<Tensor>();

  add(v: Variable, g: Tensor): void {
    const prev = this.grads.get(v);
    if (prev === undefined) {
      // may alias another gradient (add passes its input gradient to both parents): never
      // write into it
      this.grads.set(v, g);
    } else if (this.owned.has(prev) || adoptFresh(prev)) {
      this.owned.add(prev);
      prev.addInPlace(g);
    } else {
      const s = prev.add(g);
      this.owned.add(s);
      this.grads.set(v, s);
    }
  }

  take(v: Variable): Tensor | undefined {
    const g = this.grads.get(v);
    this.grads.delete(v);
    if (g !== undefined) {
      this.owned.delete(g);
      // an op may pass its incoming gradient through unchanged to several inputs (add
      // does), so from here on nobody may adopt or write into it
      adoptFresh(g);
    }
    return g;
  }
}

/** Adds `g` into `v.grad`, which is always a packed tensor of v's own dtype and memory. */
export function accumulateGrad(v: Variable, g: Tensor): void {
  if (v.grad === null) {
    // adopt an op's freshly allocated gradient; copy anything that may be shared
    if (g.dtype === v.data.dtype && adoptFresh(g)) {
      v.grad = g;
      // g may be a BufferArena's array: the arena must not recycle it while v still holds it
      activeArena()?.noteGrad(v);
    } else v.grad = g.dtype === v.data.dtype ? g.clone() : g.astype(v.data.dtype);
  } else {
    v.grad.addInPlace(g);
  }
}

export function runBackward(root: Variable, seed: Tensor): void {
  if (root._freed) {
    throw new Error(
      "backward: this Variable's graph was already freed by an earlier backward(); recompute the forward pass",
    );
  }
  if (root._node === null) {
    accumulateGrad(root, seed);
    return;
  }
  const order = topoOrder(root);
  const table = new GradTable();
  table.add(root, seed);
  for (let k = order.length - 1; k >= 0; k--) {
    const v = order[k]!;
    const node = v._node;
    if (node === null) continue; // leaves were handled when their users ran
    const g = table.take(v);
    // Free first: the closure and its saved tensors go as soon as this call returns.
    v._node = null;
    v._freed = true;
    if (g === undefined) continue; // every path to the root had a zero (null) gradient
    if (v._retain) accumulateGrad(v, g);
    const grads = node.backward(g);
    const ps = node.parents;
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i]!;
      const gp = grads[i];
      if (!p.requiresGrad || gp === null || gp === undefined) continue;
      if (!sameShape(gp.shape, p.data.shape)) {
        throw new Error(
          `backward: op "${node.op}" produced a gradient of shape ${fmt(gp.shape)} for its input ${i} of shape ${fmt(p.data.shape)} (internal error in the op)`,
        );
      }
      const gc = gp.dtype === p.data.dtype ? gp : gp.astype(p.data.dtype);
      if (p._node !== null) table.add(p, gc);
      else if (p._freed) {
        throw new Error(
          `backward: input ${i} of op "${node.op}" was produced by a graph already freed by an earlier backward(); recompute it`,
        );
      } else accumulateGrad(p, gc);
    }
  }
}
