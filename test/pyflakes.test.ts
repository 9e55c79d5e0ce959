/**
 * Every Python file of the repository (the .py files the scripts carry to the hosts, the e2e
 * suite's and the test hosts' helpers) passes pyflakes (Debian's pyflakes3): names used but never
 * defined, imports and variables never used, redefinitions, f-strings without placeholders.
 * pyflakes reads a file without running it (https://github.com/PyCQA/pyflakes), so a mistake on a
 * branch no test takes, such as a host's error path, is still found.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./harness";
import { itWith } from "./tools";

/** What is not the project's own source: dependencies, build output, caches (see .gitignore). */
const NOT_OURS = new Set(["node_modules", ".git", "out", "synth", ".pulumi-state", ".cache", "__pycache__"]);

function pythonFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return NOT_OURS.has(e.name) ? [] : pythonFiles(p);
    return e.isFile() && e.name.endsWith(".py") ? [p] : [];
  });
}

const files = pythonFiles(REPO);
const NEEDS = { tools: ["pyflakes3"] };

function pyflakes(...paths: string[]): { status: number | null; output: string } {
  const r = spawnSync("pyflakes3", paths, { cwd: REPO, encoding: "utf8" });
  if (r.error) throw r.error;
  return { status: r.status, output: r.stdout + r.stderr };
}

describe("Python files", () => {
  it("are found where they live: the carried scripts, the e2e suite, the test hosts", () => {
    expect(files.map((f) => path.relative(REPO, f))).toEqual(
      expect.arrayContaining(["components/scripts/migrate-tree.py", "components/scripts/storage-alert.py", "test/e2e/prober.py", "test/hosts/standin.py"]),
    );
  });

  itWith(NEEDS, "GIVEN a file with an unused import THEN pyflakes fails and names it (the check can fail)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pyflakes-"));
    try {
      const file = path.join(dir, "bad.py");
      fs.writeFileSync(file, "import os\nimport sys\n\nprint(sys.argv)\n");
      const r = pyflakes(file);
      expect(r.output).toBe(`${file}:1:1: 'os' imported but unused\n`);
      expect(r.status).toBe(1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  // one pyflakes3 for all of them (each start costs a Python interpreter); its output names each
  // finding's file and line
  itWith(NEEDS, "every one passes pyflakes", () => {
    const r = pyflakes(...files.map((f) => path.relative(REPO, f)));
    expect(r.output).toBe("");
    expect(r.status).toBe(0);
  });
});
