/**
 * How `pulumi preview` and `pulumi up` load the program's TypeScript (Pulumi.yaml: runtime
 * options `typescript: false`, `nodeargs: --require ./tools/register-ts.cjs`).
 *
 * With `typescript: true` the SDK's run entry registers its vendored ts-node 7 with type checking
 * (node_modules/@pulumi/pulumi/cmd/run/run.js), which spends 5-12 s of every preview on 2 cores
 * type-checking what `npm test` (tsc strict) has already checked. With `typescript: false` the
 * run entry registers nothing and `require`s index.ts; the Node language host passes `nodeargs`
 * to node before the run entry (sdk/nodejs/cmd/pulumi-language-nodejs/main.go: parseOptions reads
 * `typescript` and `nodeargs`, Run puts the split `nodeargs` ahead of its own arguments).
 *
 * This hook only strips types: `.ts` files go through esbuild's transform (what tsx and vitest
 * use), CommonJS out as tsconfig.json's `module` says, and every `.js` file of node_modules loads
 * as node loads it. tsx (`--import tsx` or `--require tsx/cjs`) works too, but it also resolves
 * and inspects every `.js` file the SDK loads, which costs about as much again as the program
 * (bench/preview.ts measures the three ways). Errors keep their .ts file names; add
 * `--enable-source-maps` to nodeargs for mapped line numbers (it reads the SDK's source maps too).
 */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS preload, run by node itself */
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const Module = require("node:module");
const path = require("node:path");

// esbuild's transform starts its service process on first use (a few hundred ms on 2 busy
// cores): unchanged files come from a cache instead (REGISTER_TS_CACHE_DIR, or
// node_modules/.cache/register-ts), keyed by the file's path and content, the options and
// esbuild's version, as ts-node and tsx keep theirs.
const OPTIONS = { loader: "ts", format: "cjs", target: "es2022" /* tsconfig.json's target */, sourcemap: "inline" };
const CACHE_DIR = process.env.REGISTER_TS_CACHE_DIR || path.join(__dirname, "..", "node_modules", ".cache", "register-ts");
let esbuild;

function transform(source, filename) {
  esbuild ??= require("esbuild");
  const key = crypto
    .createHash("sha256")
    .update(JSON.stringify([esbuild.version, OPTIONS, filename]))
    .update(source)
    .digest("hex");
  const cached = path.join(CACHE_DIR, `${key}.js`);
  try {
    return fs.readFileSync(cached, "utf8");
  } catch {
    const { code } = esbuild.transformSync(source, { ...OPTIONS, sourcefile: filename });
    try {
      fs.mkdirSync(CACHE_DIR, { recursive: true });
      const tmp = `${cached}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, code);
      fs.renameSync(tmp, cached); // atomic: a parallel run reads all of it or nothing
    } catch {
      // a read-only checkout still runs, uncached
    }
    return code;
  }
}

Module._extensions[".ts"] = function compileTypeScript(module, filename) {
  module._compile(transform(fs.readFileSync(filename, "utf8"), filename), filename);
};
