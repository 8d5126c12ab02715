// Installs Variable's method sugar (declared in variable.ts): each method delegates to the op
// function of the same name. It lives apart from the class so that variable.ts imports no op
// and the modules form no cycle (see the note in variable.ts); index.ts imports this first.
import type { SliceArg } from "@tessera/tensor";
import { Variable, type VariableMethods } from "./variable.ts";
import type { Input } from "./record.ts";
import * as arith from "./ops/arith.ts";
import * as unary from "./ops/unary.ts";
import * as act from "./ops/relu.ts";
import * as red from "./ops/reduce.ts";
import * as shp from "./ops/shape.ts";
import * as sl from "./ops/slice.ts";
import * as mm from "./ops/matmul.ts";
import * as sm from "./ops/softmax.ts";

type Axes = number | readonly number[];

const methods: VariableMethods & ThisType<Variable> = {
  add(b: Input) {
    return arith.add(this, b);
  },
  sub(b: Input) {
    return arith.sub(this, b);
  },
  mul(b: Input) {
    return arith.mul(this, b);
  },
  div(b: Input) {
    return arith.div(this, b);
  },
  pow(b: Input) {
    return arith.pow(this, b);
  },
  neg() {
    return unary.neg(this);
  },
  exp() {
    return unary.exp(this);
  },
  log() {
    return unary.log(this);
  },
  sqrt() {
    return unary.sqrt(this);
  },
  sigmoid() {
    return unary.sigmoid(this);
  },
  tanh() {
    return unary.tanh(this);
  },
  relu() {
    return act.relu(this);
  },
  leakyRelu(slope?: number) {
    return act.leakyRelu(this, slope);
  },
  matmul(b: Variable) {
    return mm.matmul(this, b);
  },
  sum(axes?: Axes, keepdims = false) {
    return red.sum(this, axes, keepdims);
  },
  mean(axes?: Axes, keepdims = false) {
    return red.mean(this, axes, keepdims);
  },
  max(axes?: Axes, keepdims = false) {
    return red.max(this, axes, keepdims);
  },
  min(axes?: Axes, keepdims = false) {
    return red.min(this, axes, keepdims);
  },
  reshape(shape: readonly number[]) {
    return shp.reshape(this, shape);
  },
  flatten(startAxis?: number, endAxis?: number) {
    return shp.flatten(this, startAxis, endAxis);
  },
  transpose(axes?: readonly number[]) {
    return shp.transpose(this, axes);
  },
  permute(axes: readonly number[]) {
    return shp.permute(this, axes);
  },
  broadcastTo(shape: readonly number[]) {
    return shp.broadcastTo(this, shape);
  },
  unsqueeze(axis: number) {
    return shp.unsqueeze(this, axis);
  },
  squeeze(axes?: Axes) {
    return shp.squeeze(this, axes);
  },
  slice(...specs: SliceArg[]) {
    return sl.slice(this, ...specs);
  },
  logSoftmax(axis?: number) {
    return sm.logSoftmax(this, axis);
  },
  softmax(axis?: number) {
    return sm.softmax(this, axis);
  },
};

// Non-enumerable, like methods written in a class body.
for (const [name, fn] of Object.entries(methods)) {
  Object.defineProperty(Variable.prototype, name, {
    value: fn,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}
