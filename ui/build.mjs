// Builds the tracing UI into the backend package, so that `pip install` and `autellix serve`
// need no Node:  npm ci && npm run build  [-- --outdir DIR]
// Output: index.html, app.js (one minified IIFE), app.css and THIRD_PARTY_LICENSES.txt with
// the full licence of every npm package that ended up in app.js. The build is deterministic:
// tests/ui/test_bundle.py rebuilds into a temporary folder and compares it with the committed
// files.

import { build } from "esbuild";
import {
  copyFileSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const outIndex = args.indexOf("--outdir");
const outdir = resolve(
  outIndex >= 0 ? args[outIndex + 1] : join(here, "../backend/autellix_backend/server/ui/static"),
);
mkdirSync(outdir, { recursive: true });

const result = await build({
  entryPoints: [join(here, "src/main.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "none",
  metafile: true,
  outfile: join(outdir, "app.js"),
  logLevel: "warning",
});
copyFileSync(join(here, "src/app.css"), join(outdir, "app.css"));
copyFileSync(join(here, "static-src/index.html"), join(outdir, "index.html"));

// The packages whose code is in the bundle, from esbuild's own list of inputs.
const packages = new Set();
for (const input of Object.keys(result.metafile.inputs)) {
  const match = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (match) packages.add(match[1]);
}
const sections = [...packages].sort().map((name) => {
  const dir = join(here, "node_modules", name);
  const meta = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
  // Licence files at the package root, and those of code it vendors (echarts/licenses/*).
  const files = readdirSync(dir, { recursive: true })
    .filter((f) => /(^|\/)(licen[cs]es?\/[^/]+|(licen[cs]e|copying|notice)[^/]*)$/i.test(f))
    .filter((f) => !f.includes("node_modules") && statSync(join(dir, f)).isFile())
    .filter((f) => !/\.(js|mjs|ts|map|json)$/.test(f))
    .sort();
  if (!files.length) throw new Error(`${name} ships no licence file`);
  const texts = files.map((f) => readFileSync(join(dir, f), "utf8").trim());
  return `${"=".repeat(78)}\n${name} ${meta.version} (${meta.license})\n${"=".repeat(78)}\n\n${texts.join("\n\n")}\n`;
});
writeFileSync(
  join(outdir, "THIRD_PARTY_LICENSES.txt"),
  `Third-party code bundled in app.js, with its licences.\n\n${sections.join("\n")}`,
);
