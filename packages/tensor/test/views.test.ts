import { describe, expect, it } from "vitest";
import fc from "fast-check";
import ndarray from "ndarray";
import { Tensor, arange, concat, fromArray, stack, zeros } from "../src/index.ts";
import { NUM_RUNS, allIndices, arbShape, arbView, nestedGet, prod } from "./helpers.ts";

describe("views", () => {
  it("a sliced+permuted view reads the base elements the recipe says", () => {
    fc.assert(
      fc.property(arbView(arbShape()), ({ view, base, perm, starts, steps }) => {
        const r = view.ndim;
        for (const idx of allIndices(view.shape)) {
          const pre = new Array<number>(r);
          for (let i = 0; i < r; i++) pre[perm[i]!] = idx[i]!;
          let flat = 0;
          for (let j = 0; j < r; j++) flat += (starts[j]! + pre[j]! * steps[j]!) * base.strides[j]!;
          expect(view.get(...idx)).toBe(base.data[flat]);
        }
        expect(view.data).toBe(base.data); // no copy
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("every view read equals the same read from contiguous() and from scijs ndarray", () => {
    fc.assert(
      fc.property(arbView(arbShape()), ({ view }) => {
        const c = view.contiguous();
        expect(c.isContiguous()).toBe(true);
        expect(c.offset).toBe(0);
        expect(c.data.length).toBe(view.size);
        expect(c.shape).toEqual(view.shape);
        const nd = view.nd;
        const nested = view.toArray();
        allIndices(view.shape).forEach((idx, f) => {
          const v = view.get(...idx);
          expect(c.get(...idx)).toBe(v);
          expect(c.data[f]).toBe(v);
          expect(nd.get(...idx)).toBe(v);
          expect(nestedGet(nested, idx)).toBe(v);
        });
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("contiguous() returns this exactly when packed, offset 0 and full-length data", () => {
    const t = arange(6).reshape([2, 3]);
    expect(t.contiguous()).toBe(t);
    expect(t.T.contiguous()).not.toBe(t.T);
    const row = t.slice(1); // packed but offset 3
    expect(row.isContiguous()).toBe(true);
    expect(row.contiguous()).not.toBe(row);
    const head = t.slice(0); // packed, offset 0, but data longer than the view
    expect(head.contiguous()).not.toBe(head);
    expect(head.contiguous().toArray()).toEqual([0, 1, 2]);
    // size-1 axes with odd strides still count as packed
    expect(new Tensor(new Float32Array(3), [1, 3], [99, 1]).isContiguous()).toBe(true);
  });

  it("reshape round-trips and keeps row-major order; it is a view when contiguous", () => {
    fc.assert(
      fc.property(arbView(arbShape()), fc.integer({ min: 0, max: 3 }), ({ view }, split) => {
        const flatVals = allIndices(view.shape).map((idx) => view.get(...idx));
        const flat = view.reshape([-1]);
        expect(flat.shape).toEqual([view.size]);
        expect(Array.from({ length: view.size }, (_, i) => flat.get(i))).toEqual(flatVals);
        // a random 2-d factorisation and back
        const n = view.size;
        const a =
          n === 0 ? split : ([1, 2, 3, 4, 5, 6, 7].filter((d) => n % d === 0)[split % 2] ?? 1);
        const two = view.reshape([a, a === 0 ? 0 : n / a]);
        const back = two.reshape(view.shape);
        expect(back.toArray()).toEqual(view.toArray());
        if (view.isContiguous()) {
          expect(flat.data).toBe(view.data);
          expect(view.view([-1]).data).toBe(view.data);
        }
        // view() succeeds exactly when reshape did not copy
        let viewed: Tensor | null = null;
        try {
          viewed = view.view([-1]);
        } catch {
          viewed = null;
        }
        expect(viewed !== null).toBe(flat.data === view.data);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("reshape of a non-contiguous view: a view when strides allow (NumPy's rule), else a copy", () => {
    const t = arange(24).reshape([4, 6]);
    const cols = t.slice(null, [0, 4]); // [4,4] with row stride 6
    const split = cols.reshape([2, 2, 4]); // splitting the strided axis: still a view
    expect(split.data).toBe(t.data);
    expect(split.strides).toEqual([12, 6, 1]);
    const merged = cols.reshape([16]); // merging non-adjacent rows needs a copy
    expect(merged.data).not.toBe(t.data);
    expect(merged.toArray()).toEqual([0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21]);
    expect(() => cols.view([16])).toThrow(
      /view: a tensor of shape \[4,4\] with strides \[6,1\] cannot be viewed as \[16\] without a copy/,
    );
  });

  it("permute then inverse permute is the identity; transpose reverses axes", () => {
    fc.assert(
      fc.property(arbView(arbShape(4, 4)), fc.integer({ min: 0, max: 1e6 }), ({ view }, seed) => {
        const r = view.ndim;
        const p = Array.from({ length: r }, (_, i) => i).sort(
          (a, b) => ((a * 7919 + seed) % 13) - ((b * 7919 + seed) % 13),
        );
        const inv = new Array<number>(r);
        p.forEach((src, i) => (inv[src] = i));
        expect(view.permute(p).permute(inv).toArray()).toEqual(view.toArray());
        const tr = view.transpose();
        expect(tr.shape).toEqual([...view.shape].reverse());
        for (const idx of allIndices(view.shape))
          expect(tr.get(...[...idx].reverse())).toBe(view.get(...idx));
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("slice follows Python semantics for in-range bounds, including negative steps", () => {
    const t = arange(10);
    const py = (start: number | null, stop: number | null, step: number): number[] => {
      // reference: Python's range/slice rules for in-range bounds
      const n = 10;
      const s = start === null ? (step > 0 ? 0 : n - 1) : start < 0 ? start + n : start;
      const e = stop === null ? (step > 0 ? n : -1) : stop < 0 ? stop + n : stop;
      const out: number[] = [];
      if (step > 0) for (let i = s; i < e; i += step) out.push(i);
      else for (let i = s; i > e; i += step) out.push(i);
      return out;
    };
    const bounds = [null, 0, 1, 3, 9, -1, -3, -10];
    for (const start of bounds)
      for (const stop of [...bounds, 10])
        for (const step of [1, 2, 3, -1, -2, -4]) {
          if (step < 0 && stop === 10) continue;
          expect(t.slice([start, stop, step]).toArray()).toEqual(py(start, stop, step));
          expect(t.slice({ start, stop, step }).toArray()).toEqual(py(start, stop, step));
        }
    const m = arange(12).reshape([3, 4]);
    expect(m.slice(-1).toArray()).toEqual([8, 9, 10, 11]);
    expect(m.slice(null, 2).toArray()).toEqual([2, 6, 10]);
    expect(m.slice([null, null, -1], [1, 3]).toArray()).toEqual([
      [9, 10],
      [5, 6],
      [1, 2],
    ]);
    expect(m.slice([2, 1]).shape).toEqual([0, 4]);
  });

  it("squeeze / unsqueeze / broadcastTo", () => {
    fc.assert(
      fc.property(arbView(arbShape(3, 3)), fc.integer({ min: 0, max: 100 }), ({ view }, k) => {
        const ax = k % (view.ndim + 1);
        const u = view.unsqueeze(ax);
        expect(u.shape).toEqual([...view.shape.slice(0, ax), 1, ...view.shape.slice(ax)]);
        expect(u.squeeze(ax).toArray()).toEqual(view.toArray());
        expect(u.data).toBe(view.data);
        const sq = view.squeeze();
        expect(sq.shape).toEqual(view.shape.filter((d) => d !== 1));
        expect(sq.reshape(view.shape).toArray()).toEqual(view.toArray());
        const target = [2, ...view.shape.map((d) => (d === 1 ? 3 : d))];
        const b = view.broadcastTo(target);
        expect(b.data).toBe(view.data);
        for (const idx of allIndices(target)) {
          const src = idx.slice(1).map((i, d) => (view.shape[d] === 1 ? 0 : i));
          expect(b.get(...idx)).toBe(view.get(...src));
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it("clone copies, astype converts, fill/set write through views, item reads size-1", () => {
    const t = arange(6).reshape([2, 3]);
    const c = t.clone();
    c.set(0, 0, 42);
    expect(t.get(0, 0)).toBe(0);
    expect(t.astype("float32")).toBe(t);
    const i = fromArray([1.7, -1.7, 2.5]).astype("int32");
    expect(i.dtype).toBe("int32");
    expect(Array.from(i.data)).toEqual([1, -1, 2]);
    t.T.slice(1).fill(9); // column 1
    expect(t.toArray()).toEqual([
      [0, 9, 2],
      [3, 9, 5],
    ]);
    t.slice(-1).set(-1, 7);
    expect(t.get(1, 2)).toBe(7);
    expect(t.slice(1, 2).item()).toBe(7);
    expect(zeros([1, 1, 1]).fill(3).item()).toBe(3);
    expect(t.size).toBe(6);
    expect(t.ndim).toBe(2);
  });

  it("concat and stack agree with a naive reference", () => {
    fc.assert(
      fc.property(
        arbShape(3, 4, 1),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 3 }),
        fc.nat(),
        (shape, sizes, k) => {
          const axis = k % shape.length;
          const parts = sizes.map((d, j) => {
            const s = shape.slice();
            s[axis] = d;
            return arange(prod(s))
              .add(100 * j)
              .reshape(s);
          });
          const c = concat(parts, axis);
          const total = sizes.reduce((a, b) => a + b, 0);
          expect(c.shape[axis]).toBe(total);
          for (const idx of allIndices(c.shape)) {
            let j = 0,
              i = idx[axis]!;
            while (i >= sizes[j]!) i -= sizes[j++]!;
            const src = idx.slice();
            src[axis] = i;
            expect(c.get(...idx)).toBe(parts[j]!.get(...src));
          }
          const same = sizes.map((_, j) => arange(prod(shape)).add(j).reshape(shape));
          const st = stack(same, -1);
          expect(st.shape).toEqual([...shape, sizes.length]);
          for (const idx of allIndices(st.shape)) {
            expect(st.get(...idx)).toBe(same[idx[idx.length - 1]!]!.get(...idx.slice(0, -1)));
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it("wraps a scijs ndarray's layout exactly", () => {
    const a = ndarray(new Float64Array([1, 2, 3, 4, 5, 6]), [2, 3]);
    const tr = a.transpose(1, 0).step(-1, 1);
    const t = Tensor.fromNdarray(tr);
    expect(t.data).toBe(a.data);
    expect(t.toArray()).toEqual([
      [3, 6],
      [2, 5],
      [1, 4],
    ]);
    expect(() => Tensor.fromNdarray(ndarray([1, 2] as unknown as Float64Array))).toThrow(
      /Tensor: data must be a Float32Array, Float64Array or Int32Array/,
    );
    expect(() => Tensor.fromNdarray({} as never)).toThrow(
      /Tensor.fromNdarray: expected a scijs ndarray/,
    );
  });
});
