// Progress of a sweep on stderr. Every configuration event (start, done, failed) is one line;
// the run function's own progress texts are one line each on a log (non-TTY), and on a
// terminal they rewrite a single live status line instead. The time left is the mean duration
// of the configurations finished in this process times the number still to run in this shard
// ("unknown" until one has finished: resumed points say nothing about this machine's speed).
import type { Shard } from "./shard.ts";

/** Where progress goes: process.stderr, or anything with `write` (tests). */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Force live-line mode on or off (default: the stream's isTTY). */
  tty?: boolean;
  /** Milliseconds clock (default performance.now); tests pass a fake. */
  clock?: () => number;
}

export interface ProgressCounts {
  /** Configurations this shard owns. */
  shardTotal: number;
  /** Of those, already finished before this process started. */
  alreadyDone: number;
  /** Configurations in the whole sweep (all shards). */
  sweepTotal: number;
  /**
   * Points finished by the other shards, and how many of them could be seen (shards whose
   * directories sit beside this one on shared storage); null when unknown. Asked at each
   * configuration event, not on every progress text.
   */
  othersDone?: () => { done: number; shardsSeen: number } | null;
}

/** "42s", "3m05s", "1h02m". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "unknown";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, "0")}m`;
}

export class SweepProgress {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly clock: () => number;
  private done: number;
  private ranHere = 0;
  private secondsHere = 0;
  private live = "";
  private current: { key: string; started: number } | null = null;
  private others: { done: number; shardsSeen: number } | null = null;

  constructor(
    private readonly sweep: string,
    private readonly shard: Shard,
    private readonly counts: ProgressCounts,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.tty = options.tty ?? this.stream.isTTY === true;
    this.clock = options.clock ?? (() => performance.now());
    this.done = counts.alreadyDone;
  }

  /**
   * "7/12 done" unsharded; sharded "7/12 done in shard 1/4; sweep 30/48 done" when every other
   * shard's directory is in sight, "sweep ≥20/48 done" when only some are, and
   * "(48 in the sweep)" when none is.
   */
  private tally(): string {
    const { shardTotal, sweepTotal } = this.counts;
    if (this.shard.count === 1) return `${this.done}/${shardTotal} done`;
    const where = `${this.done}/${shardTotal} done in shard ${this.shard.index}/${this.shard.count}`;
    const o = this.others;
    if (o === null || o.shardsSeen === 0) return `${where} (${sweepTotal} in the sweep)`;
    const exact = o.shardsSeen >= this.shard.count - 1;
    return `${where}; sweep ${exact ? "" : "≥"}${this.done + o.done}/${sweepTotal} done`;
  }

  private refreshOthers(): void {
    if (this.shard.count > 1 && this.counts.othersDone !== undefined)
      this.others = this.counts.othersDone();
  }

  /** Seconds left for this shard, from this process's mean; NaN before the first finish. */
  secondsLeft(): number {
    if (this.ranHere === 0) return NaN;
    return (this.secondsHere / this.ranHere) * (this.counts.shardTotal - this.done);
  }

  private left(): string {
    const s = this.secondsLeft();
    return Number.isNaN(s) ? "time left unknown" : `~${formatDuration(s)} left`;
  }

  /** A permanent line (on a terminal: above the live line, which is then redrawn). */
  line(text: string): void {
    const out = `${this.sweep}: ${text}`;
    if (this.tty) {
      this.stream.write(`\r\x1b[K${out}\n`);
      if (this.live !== "") this.stream.write(this.fit(this.live));
    } else {
      this.stream.write(out + "\n");
    }
  }

  private fit(text: string): string {
    // A pseudo-terminal may report 0 columns: treat that like unknown.
    const cols = this.stream.columns || 100;
    return text.length < cols ? text : text.slice(0, Math.max(0, cols - 2)) + "…";
  }

  private setLive(text: string): void {
    this.live = text;
    this.stream.write(`\r\x1b[K${this.fit(text)}`);
  }

  begin(): void {
    this.refreshOthers();
    const { shardTotal, alreadyDone, sweepTotal } = this.counts;
    const shardText =
      this.shard.count === 1
        ? `${sweepTotal} configurations`
        : `shard ${this.shard.index}/${this.shard.count}: ${shardTotal} of ${sweepTotal} configurations`;
    this.line(`${shardText}, ${alreadyDone} already done, ${shardTotal - alreadyDone} to run`);
  }

  start(key: string): void {
    this.current = { key, started: this.clock() };
    this.refreshOthers();
    this.line(`run ${key} [${this.tally()}; ${this.left()}]`);
    if (this.tty) this.setLive(`${this.sweep}: ${key} running [${this.tally()}; ${this.left()}]`);
  }

  /** The run function's own text for the configuration in flight. */
  update(key: string, text: string): void {
    const oneLine = text.replace(/\s*\n\s*/g, " ").trim();
    if (this.tty) {
      const elapsed =
        this.current === null
          ? ""
          : ` ${formatDuration((this.clock() - this.current.started) / 1000)}`;
      this.setLive(`${this.sweep}: ${key}${elapsed}: ${oneLine} [${this.tally()}; ${this.left()}]`);
    } else {
      this.line(`${key}: ${oneLine}`);
    }
  }

  /** Seconds since the configuration in flight started (0 when none is). */
  elapsed(): number {
    return this.current === null ? 0 : (this.clock() - this.current.started) / 1000;
  }

  /** Records the configuration in flight as finished (after its point is written). */
  finish(key: string): number {
    const seconds = this.elapsed();
    this.current = null;
    this.done++;
    this.ranHere++;
    this.secondsHere += seconds;
    this.live = "";
    this.refreshOthers();
    this.line(`done ${key} in ${formatDuration(seconds)} [${this.tally()}; ${this.left()}]`);
    return seconds;
  }

  fail(key: string, error: unknown): void {
    this.current = null;
    this.live = "";
    this.line(`FAILED ${key}: ${error instanceof Error ? error.message : String(error)}`);
  }

  end(): void {
    this.live = "";
    this.refreshOthers();
    const ran =
      this.ranHere === 0 ? "" : `; ${this.ranHere} run here in ${formatDuration(this.secondsHere)}`;
    this.line(`${this.tally()}${ran}`);
  }
}
