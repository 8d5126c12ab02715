// A pool of worker_threads over SharedArrayBuffer memory. The calling thread computes one share
// of every product and the workers the rest (threads = callers + workers: 2 cores -> 1 worker).
// Dispatch writes the job into a worker's shared control words and bumps a counter; the worker,
// spinning briefly before it sleeps in Atomics.wait, starts within microseconds. The calling
// thread blocks (spin, then Atomics.wait) until every share is done, so products stay
// synchronous. Workers are unref()'d: an idle pool never keeps a script alive.
import { MessageChannel, Worker, receiveMessageOnPort } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import { availableParallelism } from "node:os";
import {
  CLAIM,
  COUNT,
  MAX_CHUNKS,
  NEXT,
  WORK_BYTES,
  CTL_INTS,
  DEAD,
  DONE,
  KIND_QUIT,
  PARAMS,
  READY,
  SEQ,
  STATUS,
  STATUS_ERROR,
  encodeJob,
  jobDef,
  runRange,
} from "./jobs.ts";
import type { AnyArray } from "./jobs.ts";
import { checkKernelPath, defaultKernels } from "./kernels.ts";
import type { KernelPath } from "./kernels.ts";
import { SCRATCH_BYTES, WasmThread, createKernelMemory } from "./wasm-gemm.ts";

export interface PoolOptions {
  /** Threads doing work, the calling thread included (default: availableParallelism()). */
  threads?: number;
  /** Products below this many floating-point operations run on the calling thread only (default 300 000). */
  minParallelFlops?: number;
  /** A job a worker has not finished after this many ms fails and the worker is replaced (default 120 000). */
  timeoutMs?: number;
  /** Atomics.load spins a worker makes before sleeping (default 200 000, about 0.5 ms). */
  spin?: number;
  /**
   * A dense product is packed once, whole, into shared memory when both packed operands fit in
   * this many bytes (default 64 MiB); larger ones have every chunk pack its own cache blocks.
   */
  maxPackedBytes?: number;
  /** Kernels for float32 products on this pool unless a call says otherwise (default: TESSERA_KERNELS, else "asm"). */
  kernels?: KernelPath;
}

interface Slot {
  worker: Worker;
  ctl: Int32Array;
  params: Float64Array;
  port: MessagePort;
  /** Buffer ids this worker has been sent. */
  known: Set<number>;
  index: number;
  exitCode: number | undefined;
  /** Whether this worker has been sent the pool's WebAssembly kernel memory. */
  hasKernelMemory: boolean;
}

const bootstrap = new URL("./worker-bootstrap.mjs", import.meta.url);
const entry = new URL("./worker.ts", import.meta.url).href;

let nextBufferId = 1;
const bufferIds = new WeakMap<SharedArrayBuffer, number>();
const livePools = new Set<MatrixPool>();
/** When a registered buffer is collected on this thread, let workers drop their reference too. */
const dropped = new FinalizationRegistry<number>((id) => {
  for (const pool of livePools) pool.forget(id);
});

function bufferId(sab: SharedArrayBuffer): number {
  let id = bufferIds.get(sab);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(sab, id);
    dropped.register(sab, id);
  }
  return id;
}

/** A share of a job: [lo, hi, lo2, hi2] as the kernel's range function expects. */
export type Range = readonly [number, number, number, number];

export class MatrixPool {
  /** Threads doing work, the calling thread included. */
  readonly threads: number;
  readonly minParallelFlops: number;
  readonly timeoutMs: number;
  readonly maxPackedBytes: number;
  readonly kernels: KernelPath;
  private readonly spin: number;
  /**
   * The one shared WebAssembly memory of this pool's kernels (created by the first WebAssembly
   * job): a scratch region per thread (the caller's first, then worker i's at (i+1)·SCRATCH_BYTES),
   * then the whole-operand panels every thread reads in place. `caller` is this thread's kernel on it.
   */
  private kernelMem: { memory: WebAssembly.Memory; caller: WasmThread } | undefined;
  private readonly slots: Slot[] = [];
  private closed = false;
  private readonly scratch = new Map<string, SharedArrayBuffer>();
  private readonly sharedStructure = new WeakMap<Int32Array, Int32Array>();
  /** Chunk counter and chunk ranges shared by the caller and all workers. */
  private readonly work = new SharedArrayBuffer(WORK_BYTES);
  private readonly counter = new Int32Array(this.work, 0, 2);
  private readonly chunkTable = new Float64Array(this.work, 16, MAX_CHUNKS * 4);
  /** Workers replaced after a crash or timeout, inside a job or between jobs (diagnostics and tests). */
  replacements = 0;
  /** Of those, workers found dead between jobs (they fail no call: products stay correct). */
  lostBetweenJobs = 0;
  /** Jobs posted to workers so far, and how many of them were claimed by the worker (diagnostics). */
  posted = 0;
  claimed = 0;
  /** Jobs run so far by kind (jobs.ts KIND_*; diagnostics and tests). */
  readonly jobsByKind = new Map<number, number>();
  /**
   * Milliseconds the calling thread spent in run() by kind, and the part of it spent waiting for
   * workers after its own chunks were done (diagnostics: `profile-epoch --jobs`; jobKindName
   * names the kinds). Four performance.now() calls a job.
   */
  readonly msByKind = new Map<number, { run: number; waiting: number }>();

  private noteTime(kind: number, run: number, waiting: number): void {
    const t = this.msByKind.get(kind);
    if (t === undefined) this.msByKind.set(kind, { run, waiting });
    else {
      t.run += run;
      t.waiting += waiting;
    }
  }

  constructor(options: PoolOptions = {}) {
    const threads = options.threads ?? availableParallelism();
    if (!Number.isSafeInteger(threads) || threads < 1)
      throw new RangeError(
        `createPool: threads must be a positive integer, got ${String(threads)}`,
      );
    this.threads = threads;
    this.minParallelFlops = options.minParallelFlops ?? 300_000;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.spin = options.spin ?? 200_000;
    this.maxPackedBytes = options.maxPackedBytes ?? 64 << 20;
    if (options.kernels !== undefined) checkKernelPath("createPool: kernels", options.kernels);
    this.kernels = options.kernels ?? defaultKernels();
    for (const key of ["minParallelFlops", "timeoutMs", "spin", "maxPackedBytes"] as const) {
      const v = this[key];
      if (!(v >= 0) || !Number.isFinite(v))
        throw new RangeError(`createPool: ${key} must be a finite number >= 0, got ${String(v)}`);
    }
    for (let i = 0; i < threads - 1; i++) this.slots.push(this.spawn(i));
    livePools.add(this);
  }

  private spawn(index: number): Slot {
    const ctlBuf = new SharedArrayBuffer(CTL_INTS * 4 + PARAMS * 8);
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(bootstrap, {
      workerData: { entry, ctl: ctlBuf, work: this.work, port: port2, spin: this.spin },
      transferList: [port2],
    });
    worker.unref();
    port1.unref();
    const slot: Slot = {
      worker,
      ctl: new Int32Array(ctlBuf, 0, CTL_INTS),
      params: new Float64Array(ctlBuf, CTL_INTS * 4, PARAMS),
      port: port1,
      known: new Set(),
      index,
      exitCode: undefined,
      hasKernelMemory: false,
    };
    worker.on("exit", (code) => {
      slot.exitCode = code;
      // A worker that dies between jobs (killed, out of memory, a crash in its loop) would
      // otherwise leave every later product on fewer threads without a word: replace it.
      this.replaceIfLost(slot);
    });
    // Errors outside a job (e.g. while loading) must not crash the process; the slot is
    // simply never READY, or DEAD, and the calling thread computes its share.
    worker.on("error", () => undefined);
    return slot;
  }

  /** Resolves once every worker has started (products work before that: the caller computes the missing shares). */
  async ready(): Promise<void> {
    await Promise.all(
      this.slots.map((s) =>
        Atomics.load(s.ctl, READY) === 1
          ? undefined
          : new Promise<void>((resolve, reject) => {
              s.worker.once("message", () => resolve());
              s.worker.once("exit", (code) =>
                reject(
                  new Error(
                    `matrix pool: worker ${s.index} exited with code ${code} while starting`,
                  ),
                ),
              );
            }),
      ),
    );
  }

  /** Stops the workers. The pool cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    livePools.delete(this);
    await Promise.all(
      this.slots.map(async (s) => {
        s.params[0] = KIND_QUIT;
        Atomics.add(s.ctl, SEQ, 1);
        Atomics.notify(s.ctl, SEQ);
        s.port.close();
        await s.worker.terminate();
      }),
    );
  }

  /** @internal Tells workers a buffer is gone. */
  forget(id: number): void {
    for (const s of this.slots) {
      if (s.known.delete(id)) s.port.postMessage({ id });
    }
  }

  /**
   * @internal Runs a job split into `chunks` (at most MAX_CHUNKS). The caller and every ready
   * worker take chunks from one shared counter until none is left, so a worker the OS has
   * descheduled never holds the call up: the caller does its chunks, and a worker that had not
   * yet claimed the job is cancelled. Which thread runs a chunk never changes the result.
   * Arrays not on SharedArrayBuffer are staged through shared scratch (inputs copied in,
   * outputs copied back); Int32 structure arrays are copied once and cached, so they must not
   * be mutated. `callerWorks: false` (tests only) leaves every chunk to the workers.
   */
  run(
    kind: number,
    args: Record<string, unknown>,
    chunks: readonly Range[],
    callerWorks = true,
  ): void {
    if (this.closed)
      throw new Error("matrix pool: the pool is closed; create a new one with createPool()");
    if (chunks.length > MAX_CHUNKS)
      throw new RangeError(`matrix pool: ${chunks.length} chunks, at most ${MAX_CHUNKS}`);
    const schema = jobDef(kind);
    this.jobsByKind.set(kind, (this.jobsByKind.get(kind) ?? 0) + 1);
    const t0 = performance.now();
    // A synchronous loop never yields to the event loop that delivers "exit": look at DEAD too.
    for (const s of [...this.slots]) if (Atomics.load(s.ctl, DEAD) === 1) this.replaceIfLost(s);
    const wasm = schema.wasm === true ? this.kernelMemory(0).caller : undefined;
    const live = this.slots.filter(
      (s) => Atomics.load(s.ctl, READY) === 1 && Atomics.load(s.ctl, DEAD) === 0,
    );
    if (live.length === 0) {
      for (const r of chunks) runRange(kind, args, r, wasm);
      this.noteTime(kind, performance.now() - t0, 0);
      return;
    }
    // Stage non-shared arrays.
    const staged: Record<string, unknown> = { ...args };
    const copyBack: [AnyArray, AnyArray][] = [];
    for (const name of schema.arrays) {
      const arr = args[name] as AnyArray;
      if (arr.buffer instanceof SharedArrayBuffer) continue;
      let sh: AnyArray;
      if (arr instanceof Int32Array) {
        let cached = this.sharedStructure.get(arr);
        if (cached === undefined) {
          cached = new Int32Array(new SharedArrayBuffer(arr.byteLength));
          cached.set(arr);
          this.sharedStructure.set(arr, cached);
        }
        sh = cached;
      } else {
        sh = this.scratchFor(name, arr);
        const output = schema.outputs.includes(name);
        // Outputs are copied in too, so entries the kernel does not write come back unchanged
        // (unless the job writes every element).
        if (!output || schema.fullWrite !== true) sh.set(arr as never);
        if (output) copyBack.push([sh, arr]);
      }
      staged[name] = sh;
    }
    // Publish the chunks, then wake the workers.
    for (let i = 0; i < chunks.length; i++) this.chunkTable.set(chunks[i]!, 4 * i);
    Atomics.store(this.counter, COUNT, chunks.length);
    Atomics.store(this.counter, NEXT, 0);
    const posted: { slot: Slot; seq: number }[] = [];
    for (const slot of live) {
      this.encode(slot, kind, staged);
      const seq = Atomics.add(slot.ctl, SEQ, 1) + 1;
      Atomics.notify(slot.ctl, SEQ);
      posted.push({ slot, seq });
      this.posted++;
    }
    let firstError: Error | undefined;
    if (callerWorks) {
      try {
        for (;;) {
          const i = Atomics.add(this.counter, NEXT, 1);
          if (i >= chunks.length) break;
          runRange(kind, staged, chunks[i]!, wasm);
        }
      } catch (e) {
        firstError = e instanceof Error ? e : new Error(String(e));
        Atomics.store(this.counter, NEXT, chunks.length); // stop the workers taking more
      }
    }
    const t1 = performance.now();
    for (const p of posted) {
      // A worker that has not claimed the job yet has nothing left to do: cancel its claim.
      if (callerWorks) {
        const c = Atomics.load(p.slot.ctl, CLAIM);
        if (c < p.seq && Atomics.compareExchange(p.slot.ctl, CLAIM, c, p.seq) === c) continue;
      }
      this.claimed++;
      const err = this.await(p.slot, p.seq);
      if (err !== undefined && firstError === undefined) firstError = err;
    }
    const t2 = performance.now();
    if (firstError !== undefined) throw firstError;
    for (const [from, to] of copyBack) to.set(from.subarray(0, to.length) as never);
    this.noteTime(kind, performance.now() - t0, t2 - t1);
  }

  /**
   * @internal A Float64Array of `length` on this pool's shared scratch memory named `name`,
   * reused (and grown) across calls: for buffers one job fills for the next, like a product's
   * packed panels. Valid until the next call with the same name.
   */
  scratchFloat64(name: string, length: number): Float64Array {
    return new Float64Array(this.scratchBuffer(name, 8 * length), 0, length);
  }

  /** @internal The same for a Float32Array. */
  scratchFloat32(name: string, length: number): Float32Array {
    return new Float32Array(this.scratchBuffer(name, 4 * length), 0, length);
  }

  /** Staging copy of `like` (same element type and length) on scratch memory named `name`. */
  private scratchFor(name: string, like: AnyArray): AnyArray {
    const Ctor = like.constructor as new (b: SharedArrayBuffer, o: number, n: number) => AnyArray;
    return new Ctor(this.scratchBuffer(name, like.byteLength), 0, like.length);
  }

  private scratchBuffer(name: string, bytes: number): SharedArrayBuffer {
    let buf = this.scratch.get(name);
    if (buf === undefined || buf.byteLength < bytes) {
      buf = new SharedArrayBuffer(Math.max(bytes, 2 * (buf?.byteLength ?? 0)));
      this.scratch.set(name, buf);
    }
    return buf;
  }

  /**
   * @internal This pool's kernel memory, grown to hold `panelBytes` after the threads' scratch
   * regions; returns the caller's kernel and the byte offset where the panels may start.
   */
  kernelMemory(panelBytes: number): { caller: WasmThread; panelsAt: number } {
    const panelsAt = this.threads * SCRATCH_BYTES;
    const need = panelsAt + panelBytes;
    if (this.kernelMem === undefined) {
      const memory = createKernelMemory(need);
      this.kernelMem = { memory, caller: new WasmThread(memory, 0) };
    } else {
      const { memory } = this.kernelMem;
      const have = memory.buffer.byteLength;
      // Shared memories grow in place: workers' kernels see the new pages at once.
      if (need > have) memory.grow(Math.ceil((need - have) / 65536));
    }
    return { caller: this.kernelMem.caller, panelsAt };
  }

  private encode(slot: Slot, kind: number, args: Record<string, unknown>): void {
    if (jobDef(kind).wasm === true && !slot.hasKernelMemory) {
      const scratchAt = (slot.index + 1) * SCRATCH_BYTES;
      slot.port.postMessage({ memory: this.kernelMem!.memory, scratchAt });
      slot.hasKernelMemory = true;
    }
    encodeJob(slot.params, kind, args, (sab) => {
      const id = bufferId(sab);
      if (!slot.known.has(id)) {
        slot.port.postMessage({ id, sab });
        slot.known.add(id);
      }
      return id;
    });
  }

  /** Waits for a worker's DONE; returns the error to throw, replacing the worker if it died or hung. */
  private await(slot: Slot, seq: number): Error | undefined {
    const { ctl } = slot;
    let v = Atomics.load(ctl, DONE);
    // Short spin only: on a busy machine a long spin would take the core from the worker awaited.
    for (let i = 0; v !== seq && i < 20_000; i++) v = Atomics.load(ctl, DONE);
    const start = performance.now();
    while (v !== seq) {
      if (Atomics.load(ctl, DEAD) === 1) {
        this.replace(slot);
        return new Error(
          `matrix pool: worker ${slot.index} exited during a job (code ${slot.exitCode ?? "unknown"}); it has been replaced, retry the call`,
        );
      }
      if (performance.now() - start > this.timeoutMs) {
        this.replace(slot);
        return new Error(
          `matrix pool: worker ${slot.index} did not finish its share within ${this.timeoutMs} ms; it has been replaced`,
        );
      }
      Atomics.wait(ctl, DONE, v, 20);
      v = Atomics.load(ctl, DONE);
    }
    if (Atomics.load(ctl, STATUS) === STATUS_ERROR) {
      const m = receiveMessageOnPort(slot.port)?.message as { error?: string } | undefined;
      return new Error(`matrix pool: worker ${slot.index} failed: ${m?.error ?? "unknown error"}`);
    }
    return undefined;
  }

  /**
   * Replaces a worker that died outside a job, once (the exit event and run() may both see it).
   * Only a worker that had started counts: one that cannot even start (a broken install) would
   * otherwise be respawned forever; ready() reports that case.
   */
  private replaceIfLost(slot: Slot): void {
    if (this.closed || this.slots[slot.index] !== slot || Atomics.load(slot.ctl, READY) !== 1)
      return;
    this.lostBetweenJobs++;
    this.replace(slot);
  }

  private replace(slot: Slot): void {
    this.replacements++;
    void slot.worker.terminate();
    slot.port.close();
    const fresh = this.spawn(slot.index);
    this.slots[slot.index] = fresh;
  }
}

/** Creates a pool; `threads` counts the calling thread (2 on a 2-core machine means 1 worker). */
export function createPool(options?: PoolOptions): MatrixPool {
  return new MatrixPool(options);
}
