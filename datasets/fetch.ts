// `pnpm datasets:fetch [mnist|fashion-mnist|cifar-10 ...] [--from-web] [--web-fallback]
//  [--base-url URL] [--dir DIR]` fills datasets/<name>/ from offline sources, verifying every
// file against the SHA-256 digests in packages/mnist-dataset-loader/src/checksums.ts (mirrored
// in datasets/README.md). Without names it fetches mnist and fashion-mnist.
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { runMain } from "../experiments/src/cli.ts";
import {
  CIFAR10_FILES,
  DatasetNotFoundError,
  fetchDataset,
  loadDataset,
  type IdxDatasetName,
} from "../packages/mnist-dataset-loader/src/index.ts";

const USAGE =
  "usage: pnpm datasets:fetch [mnist] [fashion-mnist] [cifar-10] [--from-web | --web-fallback] [--base-url URL]... [--dir DATASETS_ROOT]";
const NAMES = ["mnist", "fashion-mnist", "cifar-10"];

function parseArgs(argv: string[]) {
  const names: string[] = [];
  const baseUrls: string[] = [];
  let fromWeb = false;
  let webFallback = false;
  let dir = process.env.TESSERA_DATASETS || fileURLToPath(new URL(".", import.meta.url));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--from-web") fromWeb = true;
    else if (a === "--web-fallback") webFallback = true;
    else if (a === "--base-url" || a === "--dir") {
      const v = argv[++i];
      if (v === undefined || v.startsWith("--"))
        throw new Error(
          `${a}: expected a value, got ${v === undefined ? "nothing" : `"${v}"`} (${USAGE})`,
        );
      if (a === "--base-url") baseUrls.push(v);
      else dir = v;
    } else if (a === "--help" || a === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (a === "--verbose") {
      // read by runMain (stack traces)
    } else if (a.startsWith("-")) throw new Error(`unknown option ${a} (${USAGE})`);
    else if (!NAMES.includes(a))
      throw new Error(`unknown dataset ${JSON.stringify(a)}; expected ${NAMES.join(", ")}`);
    else names.push(a);
  }
  if (fromWeb && webFallback)
    throw new Error("--from-web and --web-fallback exclude each other; pass one");
  return {
    names: names.length > 0 ? names : ["mnist", "fashion-mnist"],
    baseUrls,
    fromWeb,
    webFallback,
    dir,
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  let failures = 0;
  for (const name of args.names) {
    if (name === "cifar-10") {
      // No offline source exists: report what is there, or exactly what to put where.
      const target = join(args.dir, "cifar-10");
      try {
        for (const split of ["train", "test"] as const) {
          const d = loadDataset("cifar-10", { split, dir: target, installed: false });
          console.log(`cifar-10 ${split}: ${d.count} images of 3x32x32 in ${d.files.join(", ")}`);
        }
      } catch (e) {
        const all = [...CIFAR10_FILES.train, ...CIFAR10_FILES.test].join(", ");
        // A malformed batch is worth showing as is; "not found" is what the hint below covers.
        if (!(e instanceof DatasetNotFoundError)) console.error((e as Error).message);
        console.error(
          `cifar-10: no offline source exists. Unpack https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz ` +
            `so that ${all} are in ${join(target, "cifar-10-batches-bin")}/ (or ${target}/), then rerun.`,
        );
        failures++;
      }
      continue;
    }
    const ds = name as IdxDatasetName;
    console.log(`${ds}: filling ${join(args.dir, ds)}/`);
    try {
      const r = await fetchDataset(ds, {
        datasetsRoot: args.dir,
        fromWeb: args.fromWeb,
        webFallback: args.webFallback,
        baseUrls: args.baseUrls.length > 0 ? args.baseUrls : undefined,
        log: (line) => console.log(line),
      });
      for (const f of r.files) {
        console.log(
          `  ${f.name}: ${f.status}${f.status === "already present" ? "" : ` from ${f.from}`}`,
        );
        console.log(`    sha256 ${f.sha256} OK -> ${f.path}`);
      }
      for (const split of ["train", "test"] as const) {
        const d = loadDataset(ds, { split, dir: r.dir, installed: false });
        console.log(`  ${split}: ${d.count} images of ${d.rows}x${d.cols}`);
      }
    } catch (e) {
      console.error((e as Error).message);
      failures++;
    }
  }
  return failures === 0 ? 0 : 1;
}

// A user error (bad option, unknown name) is one line `datasets:fetch: <message>`, exit 1;
// datasets that could not be obtained are reported above and also exit 1.
let code = 0;
await runMain("datasets:fetch", async () => {
  code = await main();
});
process.exit(code);
