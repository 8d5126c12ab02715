// What every command-line script shares: how a failure is shown, and how option values are
// parsed. A user who mistypes an option or points at a missing file gets one line,
// `<command>: <message>`, and a non-zero exit; the stack trace is only for whoever debugs the
// script (`--verbose` or DEBUG set), because to everyone else it hides the one line that matters.
//
//   const program = createCommand("block-sweep")
//     .option("--epochs <n>", "epochs", positiveInt("--epochs"), 10);
//   await runMain("block-sweep", async () => {
//     program.parse();
//     ...
//   });
import { Command, CommanderError } from "commander";
import { BufferArena } from "@tessera/autograd";

/** Exit status of a failed command (commander's own usage errors keep theirs, also 1). */
export const EXIT_FAILURE = 1;

/** What runMain reads and writes; tests pass their own. */
export interface MainIo {
  argv: readonly string[];
  env: Record<string, string | undefined>;
  /** Writes a chunk of stderr. */
  writeErr: (text: string) => void;
  /** Ends the process (tests record the code instead). */
  exit: (code: number) => void;
}

const processIo = (): MainIo => ({
  argv: process.argv,
  env: process.env,
  writeErr: (text) => process.stderr.write(text),
  exit: (code) => process.exit(code),
});

/** True when stack traces were asked for: `--verbose` among the arguments, or DEBUG set. */
export function wantsStack(argv: readonly string[], env: Record<string, string | undefined>) {
  return argv.includes("--verbose") || (env.DEBUG !== undefined && env.DEBUG !== "");
}

// Errors that mean the script itself is wrong, not its input: worth pointing at the stack.
const BUG_ERRORS = [TypeError, ReferenceError, SyntaxError];

/**
 * The text runMain prints for an error thrown by a command: `<command>: <message>`, with a
 * commander usage error's "error: " prefix dropped (the command name replaces it), and the
 * stack appended when `stack` is true. Internal errors (TypeError, ReferenceError,
 * SyntaxError, non-Error values) say how to see the stack.
 */
export function formatFailure(command: string, e: unknown, stack: boolean): string {
  if (!(e instanceof Error)) return `${command}: ${String(e)}\n`;
  let message = e.message;
  if (e instanceof CommanderError) message = message.replace(/^error: /, "");
  // A message that already starts with the command name ("train: ...") is not prefixed twice.
  const line = message.startsWith(`${command}: `) ? message : `${command}: ${message}`;
  if (stack) return `${line}\n${e.stack ?? ""}\n`;
  const isBug = BUG_ERRORS.some((k) => e instanceof k);
  return isBug ? `${line} (internal error; rerun with --verbose for the stack)\n` : `${line}\n`;
}

/**
 * Runs a command's main function. If it throws (or rejects), prints formatFailure's text to
 * stderr and exits with status 1 (a commander usage error: its own status); help and
 * --version exit 0. Returns normally when main succeeds, leaving the exit to the caller (so
 * open handles such as a worker pool must be closed by main).
 */
export async function runMain(
  command: string,
  main: () => Promise<void> | void,
  io: MainIo = processIo(),
): Promise<void> {
  try {
    await main();
  } catch (e) {
    if (
      e instanceof CommanderError &&
      (e.code === "commander.helpDisplayed" ||
        e.code === "commander.version" ||
        e.code === "commander.help")
    ) {
      io.exit(e.exitCode);
      return;
    }
    io.writeErr(formatFailure(command, e, wantsStack(io.argv, io.env)));
    io.exit(e instanceof CommanderError ? e.exitCode || EXIT_FAILURE : EXIT_FAILURE);
  }
}

/**
 * A commander Command that throws its usage errors (unknown option, bad choice, missing
 * value) to runMain instead of printing and exiting itself, so they get the same one-line
 * form; it also accepts `--verbose` (stack traces, read by runMain).
 */
export function createCommand(name: string): Command {
  return new Command(name)
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .option("--verbose", "print the stack trace of an error");
}

/** An invalid option value: the message names the option, what it needs and what it got. */
export class OptionError extends Error {
  constructor(
    readonly option: string,
    readonly expected: string,
    readonly got: string,
  ) {
    super(`${option}: expected ${expected}, got ${JSON.stringify(got)}`);
    this.name = "OptionError";
  }
}

export type OptionParser<T> = (value: string) => T;

const INTEGER = /^[+-]?\d+$/;

function parseInteger(option: string, expected: string, min: number, max: number) {
  return (value: string): number => {
    const n = INTEGER.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new OptionError(option, expected, value);
    return n;
  };
}

/** `--epochs 10`: a positive safe integer in decimal ("1e3", "2.0", "" and "abc" are refused). */
export const positiveInt = (option: string): OptionParser<number> =>
  parseInteger(option, "a positive integer", 1, Number.MAX_SAFE_INTEGER);

/** `--seed 0`: a non-negative safe integer in decimal. */
export const nonNegativeInt = (option: string): OptionParser<number> =>
  parseInteger(option, "a non-negative integer", 0, Number.MAX_SAFE_INTEGER);

/** An integer in [min, max] (inclusive). */
export const intInRange = (option: string, min: number, max: number): OptionParser<number> =>
  parseInteger(option, `an integer from ${min} to ${max}`, min, max);

function parseFinite(option: string, expected: string, ok: (n: number) => boolean) {
  return (value: string): number => {
    // Number("") and Number("  ") are 0, and "1e400" is Infinity: neither is what was typed.
    const n = value.trim() === "" ? NaN : Number(value);
    if (!Number.isFinite(n) || !ok(n)) throw new OptionError(option, expected, value);
    return n;
  };
}

/** `--lr 1e-3`: a finite number > 0 ("NaN", "Infinity", "1e400" are refused). */
export const positiveNumber = (option: string): OptionParser<number> =>
  parseFinite(option, "a finite number > 0", (n) => n > 0);

/** `--weight-decay 0`: a finite number >= 0. */
export const nonNegativeNumber = (option: string): OptionParser<number> =>
  parseFinite(option, "a finite number >= 0", (n) => n >= 0);

/** Any finite number. */
export const finiteNumber = (option: string): OptionParser<number> =>
  parseFinite(option, "a finite number", () => true);

/** A fraction in [0, 1], e.g. a sparsity. */
export const fraction = (option: string): OptionParser<number> =>
  parseFinite(option, "a number from 0 to 1", (n) => n >= 0 && n <= 1);

/** One of a fixed set of words. */
export function choice<T extends string>(option: string, values: readonly T[]): OptionParser<T> {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value))
      throw new OptionError(option, `one of ${values.join(", ")}`, value);
    return value as T;
  };
}

/**
 * A comma-separated list, each item parsed by `item` (built for the same option name):
 * `--blocks 4,8,16`. Empty items and an empty list are refused; an item's error names the list.
 */
export function list<T>(option: string, item: OptionParser<T>): OptionParser<T[]> {
  return (value: string): T[] => {
    const parts = value.split(",").map((s) => s.trim());
    if (parts.some((p) => p === ""))
      throw new OptionError(option, "a comma-separated list without empty items", value);
    return parts.map((p) => {
      try {
        return item(p);
      } catch (e) {
        if (e instanceof OptionError) {
          const what = `a comma-separated list of items each ${e.expected} (item ${JSON.stringify(p)} is not)`;
          throw new OptionError(option, what, value);
        }
        throw e;
      }
    });
  };
}

/**
 * The options of the training sweeps (block-sweep, kep-sweep, admm-sweep): --data-dir,
 * --threads (default `threads`) and --no-arena. Read them back with `trainingArena`.
 */
export function addTrainingOptions(command: Command, threads: number): Command {
  return command
    .option(
      "--data-dir <dir>",
      "directory holding the dataset files (default: search, fetching if missing)",
    )
    .option(
      "--threads <n>",
      "threads for matrix products (results do not depend on it)",
      positiveInt("--threads"),
      threads,
    )
    .option(
      "--no-arena",
      "allocate every training step's arrays afresh instead of reusing them through an autograd " +
        "BufferArena (the same numbers bit for bit; the arena took a LeNet-5 epoch from 46.4 " +
        "to 34.6 CPU s, docs/benchmarks/epoch-profile.md)",
    );
}

/** The BufferArena the training steps of a run go through (none with --no-arena). */
export function trainingArena(o: { arena: boolean }): BufferArena | undefined {
  return o.arena ? new BufferArena() : undefined;
}
