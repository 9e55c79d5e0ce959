/**
 * `npm run synth -- <stack> [out-dir]`: the offline change review. Builds the stack's host from
 * its stack file through the same config door and components as `pulumi up`, under Pulumi's
 * mock runtime (no credentials, no network), and writes into out/<stack>/:
 *   host-files/   every file the host receives (daemon.json's managed keys, sysctl.d file, ...)
 *   commands/     the exact command string of each remote command (create / delete)
 *   scripts/      the host scripts those commands carry
 *   resources.md  a table of the resources the stack declares
 *   capacity.svg  projected utilization of every host with a capacity section (all stack files,
 *                 so both servers are on one chart) against the plan's 60/80/90% thresholds
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError, loadStackFile } from "../components/config";
import { capacitySeries } from "../components/plan/monitoring";
import { renderCapacityChart } from "../components/render/chart";
import { SCRIPTS_DIR } from "../components/render/command";
import type { Read, Registration } from "./mock-capture";
import { buildHostOffline } from "./offline-host";

const REPO = path.resolve(__dirname, "..");

function usage(msg: string): never {
  console.error(`synth: ${msg}\nusage: npm run synth -- <stack> [out-dir]   (stacks: ${stacks().join(", ")})`);
  process.exit(2);
}

function stacks(): string[] {
  return fs
    .readdirSync(REPO)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined);
}

function short(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return s.length > 24 ? `${s.slice(0, 12)}…` : s;
}

function table(regs: readonly Registration[], reads: readonly Read[]): string {
  const byUrn = new Map([...regs, ...reads].map((r) => [r.urn, r.name]));
  const rows = regs.map((r) => {
    const flags = [r.protect && "protect", r.retainOnDelete && "retainOnDelete", r.deleteBeforeReplace && "deleteBeforeReplace"].filter(Boolean).join(", ");
    const triggers = Array.isArray(r.inputs.triggers) ? (r.inputs.triggers as unknown[]).map(short).join(" ") : "";
    const deps = r.dependsOn.map((u) => byUrn.get(u) ?? u).join(", ");
    const provider = r.provider ? (r.provider.split("::")[3]?.split("::")[0] ?? r.provider) : "";
    return `| ${r.type} | ${r.name} | ${byUrn.get(r.parent) ?? ""} | ${deps} | ${triggers} | ${flags} | ${provider} |`;
  });
  const readRows = reads.map((r) => `| ${r.type} | ${r.name} | ${byUrn.get(r.parent) ?? ""} |  |  | reads ${r.id} |  |`);
  return ["| type | name | parent | depends on | triggers | options | provider |", "|---|---|---|---|---|---|---|", ...rows, ...readRows].join("\n") + "\n";
}

async function main(): Promise<void> {
  const stack = process.argv[2];
  if (!stack) usage("name a stack");
  const file = path.join(REPO, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) usage(`no stack file ${path.basename(file)}`);
  const out = path.resolve(process.argv[3] ?? path.join(REPO, "out", stack));

  const config = loadStackFile(file);
  const { host, capture } = await buildHostOffline(stack, config);

  fs.rmSync(out, { recursive: true, force: true });
  const write = (rel: string, text: string, mode = 0o644) => {
    const p = path.join(out, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text, { mode });
  };
  for (const f of host.hostFiles) {
    const rel = f.kind === "file" ? f.path : `${f.path}.managed-keys`;
    write(path.join("host-files", rel), f.content);
  }
  for (const r of capture.registrations.filter((x) => x.type === "command:remote:Command")) {
    for (const phase of ["create", "delete"] as const) {
      const cmd = r.plainInputs[phase];
      if (typeof cmd !== "string") continue;
      const stdin = r.secretPaths.includes("stdin") ? "# stdin: [secret]\n" : "";
      write(
        path.join("commands", `${r.name}.${phase}.sh`),
        `#!/bin/sh\n# ${r.name} (${phase}) on ${config.host.name}: the exact command pulumi runs over SSH\n${stdin}${cmd}\n`,
        0o755,
      );
    }
  }
  for (const s of fs.readdirSync(SCRIPTS_DIR).filter((f) => fs.statSync(path.join(SCRIPTS_DIR, f)).isFile()))
    write(path.join("scripts", s), fs.readFileSync(path.join(SCRIPTS_DIR, s), "utf8"), 0o755);
  write("resources.md", `# Resources of stack ${stack}\n\n${table(capture.registrations, capture.reads)}`);
  // both servers on one chart: every stack file, read through the same door; from the config
  // figures (the plan's capacity inputs, as the stack outputs), so the chart is the same on every
  // run: the live df is only known after an apply
  const series = capacitySeries(
    stacks()
      .sort()
      .map((s) => (s === stack ? config : loadStackFile(path.join(REPO, `Pulumi.${s}.yaml`)))),
    new Date(),
  );
  if (series.length > 0) {
    const { model, annualGrowth } = series[0]!.input;
    write(
      "capacity.svg",
      renderCapacityChart(series, { title: `Projected storage utilization (${model ?? "compound"} growth, ${Math.round(annualGrowth * 100)}%/year)` }),
    );
  }

  const count = (p: string) => (fs.existsSync(path.join(out, p)) ? fs.readdirSync(path.join(out, p), { recursive: true }).length : 0);
  console.log(
    `synth: ${stack}: ${capture.registrations.length} resources, ${host.hostFiles.length} host files, ${count("commands")} commands -> ${path.relative(process.cwd(), out)}`,
  );
}

main().catch((e: unknown) => {
  console.error(e instanceof ConfigError ? e.message : e);
  process.exit(1);
});
