// Every invalid dim, axis, index and slice bound throws a RangeError (or Error for shape
// mismatches) that says what was given and what is allowed.
import { describe, expect, it } from "vitest";
import * as T from "../src/index.ts";

const t = T.arange(24).reshape([2, 3, 4]);

describe("view errors", () => {
  it("reshape / view", () => {
    expect(() => t.reshape([5, 5])).toThrow(RangeError);
    expect(() => t.reshape([5, 5])).toThrow(
      /reshape: cannot reshape shape \[2,3,4\] \(size 24\) into \[5,5\] \(size 25\)/,
    );
    expect(() => t.reshape([-1, 5])).toThrow(
      /reshape: cannot infer the -1 in \[-1,5\] for a tensor of shape \[2,3,4\] \(size 24\)/,
    );
    expect(() => t.reshape([-1, -1])).toThrow(
      /reshape: shape \[-1,-1\] must hold non-negative integers and at most one -1/,
    );
    expect(() => T.zeros([0, 3]).reshape([-1, 0])).toThrow(/reshape: cannot infer the -1/);
    expect(() => t.view([7])).toThrow(
      /view: cannot reshape shape \[2,3,4\] \(size 24\) into \[7\]/,
    );
  });

  it("permute / transpose / swapaxes", () => {
    expect(() => t.permute(0, 1)).toThrow(/permute: expected a permutation of 3 axes, got \[0,1\]/);
    expect(() => t.permute(0, 1, 1)).toThrow(
      /permute: axes \[0,1,1\] are not a permutation of 0\.\.2/,
    );
    expect(() => t.transpose([0, 1, 3])).toThrow(
      /transpose: axis 3 is out of range for a tensor of rank 3; allowed axes are -3\.\.2/,
    );
    expect(() => t.swapaxes(0, 5)).toThrow(/swapaxes: axis 5 is out of range/);
    expect(() => t.permute(0, 1, 3)).toThrow(RangeError);
  });

  it("slice", () => {
    expect(() => t.slice(0, 0, 0, 0)).toThrow(
      /slice: got 4 slice arguments for a tensor of rank 3/,
    );
    expect(() => t.slice(2)).toThrow(
      /slice: index 2 is out of range for axis 0 of size 2; allowed -2\.\.1/,
    );
    expect(() => t.slice(null, -4)).toThrow(
      /slice: index -4 is out of range for axis 1 of size 3; allowed -3\.\.2/,
    );
    expect(() => t.slice(null, [0, 4])).toThrow(
      /slice: stop 4 is out of range for axis 1 of size 3; allowed -3\.\.3/,
    );
    expect(() => t.slice(null, [-4, 2])).toThrow(
      /slice: start -4 is out of range for axis 1 of size 3; allowed -3\.\.3/,
    );
    expect(() => t.slice(null, [3, null, -1])).toThrow(
      /slice: start 3 is out of range for axis 1 of size 3; allowed -3\.\.2/,
    );
    expect(() => t.slice([null, null, 0])).toThrow(
      /slice: step 0 on axis 0 must be a non-zero integer/,
    );
    expect(() => t.slice([0, 1, 1.5])).toThrow(
      /slice: step 1\.5 on axis 0 must be a non-zero integer/,
    );
    expect(() => t.slice(0.5)).toThrow(/slice: index 0\.5 is out of range/);
    expect(() => t.slice(null, [0, 4])).toThrow(RangeError);
  });

  it("squeeze / unsqueeze / broadcastTo", () => {
    expect(() => t.squeeze(1)).toThrow(
      /squeeze: axis 1 has size 3 in shape \[2,3,4\]; only size-1 axes can be squeezed/,
    );
    expect(() => t.squeeze(3)).toThrow(/squeeze: axis 3 is out of range for a tensor of rank 3/);
    expect(() => t.unsqueeze(4)).toThrow(
      /unsqueeze: axis 4 is out of range for a tensor of rank 4; allowed axes are -4\.\.3/,
    );
    expect(() => t.broadcastTo([3, 3, 4])).toThrow(
      /broadcastTo: cannot broadcast shape \[2,3,4\] to \[3,3,4\]/,
    );
    expect(() => t.broadcastTo([3, 4])).toThrow(
      /broadcastTo: cannot broadcast shape \[2,3,4\] to \[3,4\]/,
    );
    expect(() => t.broadcastTo([2, -3, 4])).toThrow(
      /broadcastTo: shape must contain non-negative integers, got \[2,-3,4\]/,
    );
  });

  it("get / set / item / astype", () => {
    expect(() => t.get(0, 0)).toThrow(/get: got 2 indices for a tensor of rank 3/);
    expect(() => t.get(0, 3, 0)).toThrow(
      /get: index 3 is out of range for axis 1 of size 3; allowed -3\.\.2/,
    );
    expect(() => t.set(0, 0, 9, 1)).toThrow(
      /set: index 9 is out of range for axis 2 of size 4; allowed -4\.\.3/,
    );
    expect(() => t.set()).toThrow(/set: expected indices followed by a value/);
    expect(() => t.item()).toThrow(/item: tensor of shape \[2,3,4\] has 24 elements; expected 1/);
    expect(() => t.astype("uint8" as T.DType)).toThrow(/astype: unknown dtype "uint8"/);
  });

  it("concat / stack", () => {
    expect(() => T.concat([])).toThrow(/concat: expected a non-empty array of tensors/);
    expect(() => T.concat([T.zeros([2, 3]), T.zeros([2, 4])], 0)).toThrow(
      /concat: shapes \[2,3\] and \[2,4\] differ outside axis 0/,
    );
    expect(() => T.concat([T.zeros([2]), T.zeros([2])], 1)).toThrow(
      /concat: axis 1 is out of range for a tensor of rank 1/,
    );
    expect(() => T.concat([T.scalar(1)])).toThrow(
      /concat: cannot concatenate 0-d tensors; use stack/,
    );
    expect(() => T.stack([T.zeros([2]), T.zeros([3])])).toThrow(
      /stack: all tensors need the same shape; got \[2\] and \[3\]/,
    );
    expect(() => T.stack([T.zeros([2])], 2)).toThrow(
      /stack: axis 2 is out of range for a tensor of rank 2/,
    );
  });
});
