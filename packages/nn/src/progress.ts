// Progress output for the training loop: a live bar (cli-progress) when writing to a terminal,
// plain one-line-per-event text otherwise, because bars redrawn with carriage returns turn CI
// logs and pipes into noise.
import cliProgress from "cli-progress";

export interface EpochSummary {
  epoch: number; // 1-based
  epochs: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss?: number;
  testAccuracy?: number;
  seconds: number;
  lr: number;
}

export interface ProgressReporter {
  /** Called before the first step of an epoch (epoch is 1-based). */
  startEpoch(epoch: number, epochs: number, steps: number): void;
  /** Called after each optimizer step with the number of steps done in this epoch. */
  step(done: number, loss: number): void;
  endEpoch(summary: EpochSummary): void;
  /** Releases the terminal (stops a live bar) when training ends early, e.g. on an error. */
  close?(): void;
}

export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** Where to write; default process.stderr. */
  stream?: OutputStream;
  /** "auto" (default) picks "bar" on a TTY and "plain" otherwise; "none" prints nothing. */
  mode?: "auto" | "bar" | "plain" | "none";
  /** Plain mode: also print a line every this many steps (0 = only epoch summaries; default 0). */
  plainEvery?: number;
}

/**
 * True when an epoch's mean training loss says the run diverged: not finite, or above twice
 * the cross-entropy of guessing uniformly over `classes` (2 ln 10 = 4.61 for 10 classes).
 * A model that learns nothing sits at ln(classes); only one whose weights blow up is that
 * confidently wrong (Adam at lr 100 on MNIST ends near 4e9 with 10% accuracy). A run stuck at
 * chance is not flagged: that is not learning, not diverging.
 */
export function isDiverged(s: Pick<EpochSummary, "trainLoss">, classes = 10): boolean {
  return !Number.isFinite(s.trainLoss) || s.trainLoss > 2 * Math.log(classes);
}

/** One line per epoch; a diverged epoch (isDiverged, 10 classes) ends with "DIVERGED". */
export function formatEpochSummary(s: EpochSummary): string {
  let line = `epoch ${s.epoch}/${s.epochs}  loss ${s.trainLoss.toFixed(4)}  acc ${(100 * s.trainAccuracy).toFixed(2)}%`;
  if (s.testLoss !== undefined && s.testAccuracy !== undefined) {
    line += `  test loss ${s.testLoss.toFixed(4)}  test acc ${(100 * s.testAccuracy).toFixed(2)}%`;
  }
  line += `  lr ${s.lr.toPrecision(3)}  ${s.seconds.toFixed(1)} s`;
  if (isDiverged(s)) line += `  DIVERGED (train loss above 2 ln 10)`;
  return line;
}

class PlainProgress implements ProgressReporter {
  private epoch = 0;
  private epochs = 0;
  private steps = 0;
  constructor(
    private readonly stream: OutputStream,
    private readonly every: number,
  ) {}
  startEpoch(epoch: number, epochs: number, steps: number): void {
    this.epoch = epoch;
    this.epochs = epochs;
    this.steps = steps;
  }
  step(done: number, loss: number): void {
    if (this.every > 0 && done % this.every === 0) {
      this.stream.write(
        `epoch ${this.epoch}/${this.epochs}  step ${done}/${this.steps}  loss ${loss.toFixed(4)}\n`,
      );
    }
  }
  endEpoch(summary: EpochSummary): void {
    this.stream.write(formatEpochSummary(summary) + "\n");
  }
}

class BarProgress implements ProgressReporter {
  private bar: cliProgress.SingleBar | null = null;
  constructor(private readonly stream: OutputStream) {}
  startEpoch(epoch: number, epochs: number, steps: number): void {
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream as NodeJS.WritableStream,
        format: `epoch ${epoch}/${epochs} [{bar}] {value}/{total} | loss {loss} | ETA {eta}s`,
        hideCursor: false,
        // Training runs synchronously, so the bar can only redraw from inside update().
        synchronousUpdate: true,
        fps: 10,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(steps, 0, { loss: "-" });
  }
  step(done: number, loss: number): void {
    this.bar?.update(done, { loss: loss.toFixed(4) });
  }
  endEpoch(summary: EpochSummary): void {
    this.close();
    this.stream.write(formatEpochSummary(summary) + "\n");
  }
  close(): void {
    this.bar?.stop();
    this.bar = null;
  }
}

class SilentProgress implements ProgressReporter {
  startEpoch(): void {}
  step(): void {}
  endEpoch(): void {}
}

export function createProgress(options: ProgressOptions = {}): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  const mode = options.mode ?? "auto";
  const every = options.plainEvery ?? 0;
  if (!Number.isSafeInteger(every) || every < 0) {
    throw new RangeError(`createProgress: plainEvery must be an integer >= 0, got ${every}`);
  }
  switch (mode) {
    case "none":
      return new SilentProgress();
    case "plain":
      return new PlainProgress(stream, every);
    case "bar":
      return new BarProgress(stream);
    case "auto":
      return stream.isTTY === true ? new BarProgress(stream) : new PlainProgress(stream, every);
    default:
      throw new Error(
        `createProgress: mode must be "auto", "bar", "plain" or "none", got ${String(mode)}`,
      );
  }
}
