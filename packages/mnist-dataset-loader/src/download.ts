import http from "node:http";
import https from "node:https";

export interface DownloadOptions {
  /** Fail when no bytes arrive for this long (ms). Default 30,000. */
  idleTimeoutMs?: number;
  /** Fail when the whole download takes longer (ms). Default 600,000. */
  totalTimeoutMs?: number;
  /** Fail when the body is larger (bytes). Default 256 MiB. */
  maxBytes?: number;
  /** Redirects followed (http/https only). Default 5. */
  maxRedirects?: number;
}

/**
 * GETs a URL into memory. Rejects, naming the URL, on a non-200 status, a body shorter than
 * Content-Length or a connection dropped mid-body, an idle or total timeout, or a body above
 * maxBytes. Nothing is written anywhere: callers verify the bytes, then write atomically.
 */
export async function downloadBytes(
  url: string,
  options: DownloadOptions = {},
): Promise<Uint8Array> {
  const maxRedirects = options.maxRedirects ?? 5;
  let current = new URL(url);
  for (let hop = 0; ; hop++) {
    const r = await getOnce(current, options);
    if (r.body !== undefined) return r.body;
    if (hop >= maxRedirects)
      throw new Error(`downloadBytes: ${url}: more than ${maxRedirects} redirects`);
    current = r.redirect;
  }
}

type Got = { body: Uint8Array; redirect?: undefined } | { body?: undefined; redirect: URL };

function getOnce(url: URL, options: DownloadOptions): Promise<Got> {
  const idleMs = options.idleTimeoutMs ?? 30_000;
  const totalMs = options.totalTimeoutMs ?? 600_000;
  const maxBytes = options.maxBytes ?? 256 * 2 ** 20;
  const where = `downloadBytes: ${url.href}`;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(
      new Error(`${where}: expected an http: or https: URL, found ${url.protocol}`),
    );
  }
  const mod = url.protocol === "https:" ? https : http;
  return new Promise<Got>((resolve, reject) => {
    let settled = false;
    let received = 0;
    const finish = (err: Error | undefined, value?: Got) => {
      if (settled) return;
      settled = true;
      clearTimeout(total);
      if (err !== undefined) {
        req.destroy();
        reject(err);
      } else resolve(value as Got);
    };
    const total = setTimeout(
      () =>
        finish(
          new Error(
            `${where}: timed out after ${totalMs} ms in total (${received} bytes received)`,
          ),
        ),
      totalMs,
    );
    const req = mod.get(
      url,
      {
        timeout: idleMs,
        headers: { "accept-encoding": "identity", "user-agent": "tessera-mnist-dataset-loader" },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const location = res.headers.location;
        if (status >= 300 && status < 400 && location !== undefined) {
          res.resume();
          const next = new URL(location, url);
          if (next.protocol !== "http:" && next.protocol !== "https:") {
            finish(new Error(`${where}: redirect to unsupported protocol ${next.protocol}`));
          } else finish(undefined, { redirect: next });
          return;
        }
        if (status !== 200) {
          res.resume();
          finish(
            new Error(
              `${where}: expected HTTP 200, found HTTP ${status} ${res.statusMessage ?? ""}`.trimEnd(),
            ),
          );
          return;
        }
        const header = res.headers["content-length"];
        const expected = header === undefined ? undefined : Number(header);
        if (expected !== undefined && expected > maxBytes) {
          finish(
            new Error(`${where}: expected at most ${maxBytes} bytes, server announces ${expected}`),
          );
          return;
        }
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => {
          received += c.length;
          if (received > maxBytes)
            finish(new Error(`${where}: expected at most ${maxBytes} bytes, received more`));
          else chunks.push(c);
        });
        res.on("end", () => {
          if (expected !== undefined && received !== expected) {
            finish(
              new Error(
                `${where}: expected ${expected} bytes (Content-Length), found ${received} (connection dropped)`,
              ),
            );
          } else finish(undefined, { body: new Uint8Array(Buffer.concat(chunks)) });
        });
        res.on("error", (e) =>
          finish(
            new Error(
              `${where}: connection failed after ${received} bytes${expected !== undefined ? ` of ${expected}` : ""}: ${e.message}`,
            ),
          ),
        );
        res.on("close", () => {
          if (!res.complete) {
            finish(
              new Error(
                `${where}: connection dropped after ${received} bytes${expected !== undefined ? ` of ${expected}` : ""}`,
              ),
            );
          }
        });
      },
    );
    req.on("timeout", () =>
      finish(
        new Error(`${where}: timed out: no data for ${idleMs} ms (${received} bytes received)`),
      ),
    );
    req.on("error", (e) => finish(new Error(`${where}: ${e.message}`)));
  });
}
