// The shared CLI layer: one line per failure, stack only when asked for, and option parsers
// that name the option and the value they refused.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  OptionError,
  choice,
  createCommand,
  fraction,
  intInRange,
  list,
  nonNegativeInt,
  nonNegativeNumber,
  positiveInt,
  positiveNumber,
  runMain,
  type MainIo,
} from "../src/cli.ts";

function fakeIo(argv: string[] = ["node", "script"], env: Record<string, string> = {}) {
  const out = { err: "", codes: [] as number[] };
  const io: MainIo = {
    argv,
    env,
    writeErr: (t) => (out.err += t),
    exit: (c) => void out.codes.push(c),
  };
  return { io, out };
}

describe("runMain", () => {
  it("prints a thrown error as one line '<command>: <message>' and exits 1", async () => {
    const { io, out } = fakeIo();
    await runMain(
      "train",
      () => {
        throw new RangeError("--data-dir: /x does not exist");
      },
      io,
    );
    expect(out.err).toBe("train: --data-dir: /x does not exist\n");
    expect(out.codes).toEqual([1]);
  });

  it("shows the stack with --verbose or DEBUG, and never otherwise", async () => {
    const fail = () => Promise.reject(new Error("boom"));
    for (const [argv, env, stack] of [
      [["node", "s", "--verbose"], {}, true],
      [["node", "s"], { DEBUG: "1" }, true],
      [["node", "s"], { DEBUG: "" }, false],
      [["node", "s"], {}, false],
    ] as const) {
      const { io, out } = fakeIo([...argv], { ...env });
      await runMain("speed", fail, io);
      expect(out.err.startsWith("speed: boom\n")).toBe(true);
      expect(out.err.includes("    at ")).toBe(stack);
    }
  });

  it("marks programming errors as internal and does not prefix the command twice", async () => {
    const { io, out } = fakeIo();
    await runMain(
      "start",
      () => {
        throw new TypeError("x is not a function");
      },
      io,
    );
    expect(out.err).toBe(
      "start: x is not a function (internal error; rerun with --verbose for the stack)\n",
    );
    const again = fakeIo();
    await runMain(
      "train",
      () => {
        throw new Error("train: ./out is in use by pid 7");
      },
      again.io,
    );
    expect(again.out.err).toBe("train: ./out is in use by pid 7\n");
  });

  it("does nothing on success", async () => {
    const { io, out } = fakeIo();
    await runMain("train", async () => undefined, io);
    expect(out).toEqual({ err: "", codes: [] });
  });

  it("gives commander's usage errors the same one-line form; help exits 0", async () => {
    const make = () =>
      createCommand("train")
        .option("--epochs <n>", "epochs", positiveInt("--epochs"), 3)
        .option("--lr <x>", "learning rate", positiveNumber("--lr"), 1e-3);
    const cases: [string[], string, number][] = [
      [["--epochs", "abc"], 'train: --epochs: expected a positive integer, got "abc"\n', 1],
      [["--lr", "1e400"], 'train: --lr: expected a finite number > 0, got "1e400"\n', 1],
      [["--lr", "NaN"], 'train: --lr: expected a finite number > 0, got "NaN"\n', 1],
      [["--nope"], "train: unknown option '--nope'\n", 1],
      [["--epochs"], "train: option '--epochs <n>' argument missing\n", 1],
    ];
    for (const [args, err, code] of cases) {
      const { io, out } = fakeIo();
      await runMain("train", () => void make().parse(args, { from: "user" }), io);
      expect(out.err).toBe(err);
      expect(out.codes).toEqual([code]);
    }
    const help = fakeIo();
    const p = make().configureOutput({ writeOut: () => undefined });
    await runMain("train", () => void p.parse(["--help"], { from: "user" }), help.io);
    expect(help.out).toEqual({ err: "", codes: [0] });
    const ok = make().parse(["--epochs", "7", "--verbose"], { from: "user" });
    expect(ok.opts()).toEqual({ epochs: 7, lr: 1e-3, verbose: true });
  });
});

describe("option parsers", () => {
  it("accept exactly the decimal integers in range", () => {
    const p = positiveInt("--epochs");
    expect(p("12")).toBe(12);
    expect(p(" 3 ")).toBe(3);
    for (const bad of ["abc", "", " ", "0", "-1", "1.5", "1e3", "0x10", "9007199254740993", "NaN"])
      expect(() => p(bad), bad).toThrow(`--epochs: expected a positive integer, got "${bad}"`);
    expect(nonNegativeInt("--seed")("0")).toBe(0);
    expect(() => intInRange("--threads", 1, 64)("65")).toThrow(
      '--threads: expected an integer from 1 to 64, got "65"',
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (n) => {
        expect(p(String(n))).toBe(n);
      }),
    );
  });

  it("accept finite numbers only, in range", () => {
    const lr = positiveNumber("--lr");
    expect(lr("1e-3")).toBe(1e-3);
    for (const bad of ["NaN", "1e400", "-1e400", "Infinity", "", "0", "-2", "1,5", "abc"])
      expect(() => lr(bad), bad).toThrow(`--lr: expected a finite number > 0, got "${bad}"`);
    expect(nonNegativeNumber("--weight-decay")("0")).toBe(0);
    expect(() => nonNegativeNumber("--weight-decay")("-0.1")).toThrow(/>= 0, got "-0.1"/);
    expect(fraction("--sparsity")("0.75")).toBe(0.75);
    expect(() => fraction("--sparsity")("1.5")).toThrow(
      '--sparsity: expected a number from 0 to 1, got "1.5"',
    );
    fc.assert(
      fc.property(fc.double({ min: 1e-300, max: 1e300, noNaN: true }), (x) => {
        expect(lr(String(x))).toBe(x);
      }),
    );
  });

  it("choices and lists name the option and the offending item", () => {
    const model = choice("--model", ["lenet5", "small-cnn"] as const);
    expect(model("lenet5")).toBe("lenet5");
    expect(() => model("vgg")).toThrow('--model: expected one of lenet5, small-cnn, got "vgg"');
    const blocks = list("--blocks", positiveInt("--blocks"));
    expect(blocks("4, 8,16")).toEqual([4, 8, 16]);
    expect(() => blocks("4,x")).toThrow(
      '--blocks: expected a comma-separated list of items each a positive integer (item "x" is not), got "4,x"',
    );
    expect(() => blocks("4,,8")).toThrow(OptionError);
    expect(() => blocks("")).toThrow(/without empty items, got ""/);
  });
});
