/**
 * One round of bench/preview.ts: evaluates the Pulumi program (index.ts) of one stack the way
 * `pulumi preview` runs it, under Pulumi's mock runtime, in this fresh process, and prints one
 * JSON line of timings. Plain JavaScript on purpose: like the SDK's run entry
 * (node_modules/@pulumi/pulumi/cmd/run/run.js), it needs no TypeScript loader of its own, so the
 * two ways differ only in how index.ts and its imports are loaded.
 *
 *   node bench/preview-child.cjs old <stack>              the SDK's vendored ts-node, type checking,
 *                                                        registered exactly as run.js does it
 *   node --import tsx bench/preview-child.cjs new <stack> Pulumi.yaml's way: runtime.options
 *                                                        typescript: false, nodeargs: --import tsx
 */
/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS file, loaded as run.js is */
"use strict";
const path = require("node:path");
const fs = require("node:fs");

const [mode, stack] = process.argv.slice(2);
if (!["old", "new"].includes(mode) || !stack) {
  console.error("usage: node bench/preview-child.cjs old|new <stack>");
  process.exit(2);
}
const REPO = path.resolve(__dirname, "..");
process.chdir(REPO);
const started = performance.now(); // since this process started (performance.timeOrigin)

if (mode === "old") {
  // As run.js does it when PULUMI_NODEJS_TYPESCRIPT=true (runtime.options.typescript, default
  // true): compiler options from tsconfig.json, transpileOnly from PULUMI_NODEJS_TRANSPILE_ONLY or
  // tsconfig's noCheck (unset here: ts-node type-checks), ts-node and typescript resolved by
  // tsutils (the project's typescript, the SDK's vendored ts-node@7.0.1), nodenext defaults for
  // TypeScript >= 4.7 overridden by tsconfig.json's own options.
  const tsutils = require("@pulumi/pulumi/tsutils");
  const semver = require("semver");
  const tsConfigPath = "tsconfig.json";
  const compilerOptions = tsutils.loadTypeScriptCompilerOptions(tsConfigPath);
  const envOnly = process.env.PULUMI_NODEJS_TRANSPILE_ONLY;
  const transpileOnly = envOnly ? envOnly === "true" : compilerOptions.noCheck;
  const { tsnodeRequire, typescriptRequire } = tsutils.typeScriptRequireStrings();
  const tsVersion = semver.parse(require(typescriptRequire).version);
  const useNodeNext = tsVersion && tsVersion.compare(new semver.SemVer("4.7.0")) >= 0;
  require(tsnodeRequire).register({
    compiler: typescriptRequire,
    transpileOnly,
    project: tsConfigPath,
    skipProject: !fs.existsSync(tsConfigPath),
    compilerOptions: {
      target: "ES2020",
      module: useNodeNext ? "nodenext" : "commonjs",
      moduleResolution: useNodeNext ? "nodenext" : "node",
      sourceMap: "true",
      ...compilerOptions,
    },
  });
}

const pulumi = require("@pulumi/pulumi");
const { parse } = require("yaml");

async function main() {
  let registered = 0;
  let pending = 0;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        if (args.type === "pulumi:pulumi:StackReference") {
          const outputs = {
            swarmManagerAddress: "192.0.2.1:2377",
            swarmManagerNodeId: "node",
            swarmWorkerToken: "SWMTKN-1-bench",
            overlayNetwork: "optimized-swarm",
          };
          return { id: String(args.inputs.name), state: { name: args.inputs.name, outputs, secretOutputNames: ["swarmWorkerToken"] } };
        }
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    "dgx-storage",
    stack,
    true, // a preview
  );
  // the stack file's config as the CLI hands it over (JSON for structured values), and the two
  // secrets the program needs (placeholders: nothing runs)
  const doc = parse(fs.readFileSync(path.join(REPO, `Pulumi.${stack}.yaml`), "utf8"));
  const all = {};
  for (const [k, v] of Object.entries(doc.config ?? {})) all[k] = typeof v === "string" ? v : JSON.stringify(v);
  all["dgx-storage:sshPrivateKey"] = "bench: no credentials";
  all["dgx-storage:borgPassphrase"] = "bench: no credentials";
  // the services' tokens, in the form the config door asks for (32+ characters, no spaces)
  all["dgx-storage:chromaToken"] = "bench-no-credentials-0000000000000000";
  all["dgx-storage:vllmApiKey"] = "bench-no-credentials-0000000000000000";
  pulumi.runtime.setAllConfig(all, ["dgx-storage:sshPrivateKey", "dgx-storage:borgPassphrase", "dgx-storage:chromaToken", "dgx-storage:vllmApiKey"]);
  const monitor = pulumi.runtime.getMonitor();
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    pending++;
    register(req, (err, res) => {
      pending--;
      if (!err) registered++;
      cb(err, res);
    });
  };

  const beforeProgram = performance.now();
  let programLoaded = 0;
  // as run.js runs it: inside the root Stack resource, whose outputs are the module's exports
  // (this is where the SDK warns about an undefined export: sdk/nodejs/runtime/stack.ts)
  const outputs = pulumi.runtime.runInPulumiStack(async () => {
    const exported = require(path.join(REPO, "index.ts"));
    programLoaded = performance.now();
    return exported;
  });
  // every registration answered, and the event loop quiet for a while
  for (let quiet = 0, i = 0; quiet < 20 && i < 100000; i++) {
    await new Promise((r) => setImmediate(r));
    quiet = pending === 0 ? quiet + 1 : 0;
  }
  await outputs;
  const done = performance.now();
  process.stdout.write(
    `${JSON.stringify({ mode, stack, resources: registered, loaderMs: beforeProgram - started, requireMs: programLoaded - beforeProgram, registerMs: done - programLoaded, totalMs: done })}\n`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
