// Pool worker loop: wait for a job on the control words (short spin, then Atomics.wait),
// run its range with the same kernels as the main thread, report DONE.
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import {
  CLAIM,
  COUNT,
  MAX_CHUNKS,
  NEXT,
  markPoolWorker,
  CTL_INTS,
  DEAD,
  DONE,
  KIND_EXIT_AFTER,
  KIND_QUIT,
  PARAMS,
  READY,
  SEQ,
  STATUS,
  STATUS_ERROR,
  STATUS_OK,
  decodeJob,
  runRange,
} from "./jobs.ts";
import { WasmThread } from "./wasm-gemm.ts";

interface Init {
  ctl: SharedArrayBuffer;
  work: SharedArrayBuffer;
  port: MessagePort;
  spin: number;
}
const { ctl: ctlBuf, work, port, spin } = workerData as Init;
const counter = new Int32Array(work, 0, 2);
const chunks = new Float64Array(work, 16, MAX_CHUNKS * 4);
markPoolWorker();
const ctl = new Int32Array(ctlBuf, 0, CTL_INTS);
const params = new Float64Array(ctlBuf, CTL_INTS * 4, PARAMS);
const buffers = new Map<number, SharedArrayBuffer>();
/** This worker's kernel on the pool's shared WebAssembly memory (sent before the first wasm job). */
let wasm: WasmThread | undefined;

// A worker that exits for any reason tells a waiting main thread at once instead of letting it wait.
process.on("exit", () => {
  Atomics.store(ctl, DEAD, 1);
  Atomics.notify(ctl, DONE);
});

/** Takes buffer registrations (and drops) the main thread posted before this job. */
function drain(): void {
  for (;;) {
    const m = receiveMessageOnPort(port);
    if (m === undefined) return;
    const msg = m.message as
      { id: number; sab?: SharedArrayBuffer } | { memory: WebAssembly.Memory; scratchAt: number };
    if ("memory" in msg) wasm = new WasmThread(msg.memory, msg.scratchAt);
    else if (msg.sab !== undefined) buffers.set(msg.id, msg.sab);
    else buffers.delete(msg.id);
  }
}

/** Claims job `seq` unless the caller already cancelled it (it did all the chunks itself). */
function claim(seq: number): boolean {
  for (;;) {
    const c = Atomics.load(ctl, CLAIM);
    if (c >= seq) return false;
    if (Atomics.compareExchange(ctl, CLAIM, c, seq) === c) return true;
  }
}

// A fresh control buffer starts at SEQ 0: a job posted right after READY is seen, never skipped.
let seen = 0;
Atomics.store(ctl, READY, 1);
parentPort?.postMessage("ready");
for (;;) {
  let v = Atomics.load(ctl, SEQ);
  for (let i = 0; v === seen && i < spin; i++) v = Atomics.load(ctl, SEQ);
  // Wait on the value just read (never re-read between check and wait: that loses wake-ups).
  while (v === seen) {
    Atomics.wait(ctl, SEQ, v, 1000);
    v = Atomics.load(ctl, SEQ);
  }
  seen = v;
  const kind = params[0]!;
  if (kind === KIND_QUIT) break;
  if (!claim(seen)) continue;
  let status = STATUS_OK;
  try {
    drain();
    const { args } = decodeJob(params, buffers);
    // Take chunks until none is left; the caller takes them from the same counter.
    for (;;) {
      const i = Atomics.add(counter, NEXT, 1);
      if (i >= Atomics.load(counter, COUNT)) break;
      const c = 4 * i;
      runRange(
        kind,
        args,
        [chunks[c]! | 0, chunks[c + 1]! | 0, chunks[c + 2]! | 0, chunks[c + 3]! | 0],
        wasm,
      );
    }
  } catch (e) {
    status = STATUS_ERROR;
    port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
  }
  Atomics.store(ctl, STATUS, status);
  Atomics.store(ctl, DONE, seen);
  Atomics.notify(ctl, DONE);
  if (kind === KIND_EXIT_AFTER) process.exit(8);
}
port.close();
