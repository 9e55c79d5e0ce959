/**
 * migrate.sh travels with its Python files inside one command string (components/render/command.ts):
 * the bundle defines each file's text, lib.sh's run_py runs it, and the whole stays under the
 * kernel's limit for one argument.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { bundledScript, CARRIED_FILES, carriedVariable, MAX_COMMAND_BYTES, SCRIPTS_DIR, scriptCommand } from "../../components/render/command";

describe("the migrate bundle", () => {
  const runArgs = [
    "run",
    "a-long-migration-name",
    "a-long-container-name",
    `/home/${"x".repeat(200)}/data`,
    `/data/${"y".repeat(200)}/data`,
    "/data",
    "10",
    "300",
    "borg:sark:sark:/mnt/borg-backup",
  ];

  it("GIVEN the largest arguments the config allows THEN the command stays under MAX_COMMAND_BYTES, below Linux's 128 KiB per argument", () => {
    const cmd = scriptCommand("migrate", runArgs, { sudo: true });
    expect(Buffer.byteLength(cmd)).toBeLessThan(MAX_COMMAND_BYTES);
    expect(MAX_COMMAND_BYTES).toBeLessThan(128 * 1024);
  });

  const read = (file: string) => fs.readFileSync(path.join(SCRIPTS_DIR, file), "utf8");
  const shFiles = fs
    .readdirSync(SCRIPTS_DIR)
    .filter((f) => /^migrate-.*\.sh$/.test(f))
    .sort();

  it("GIVEN migrate.sh, a file per subcommand over migrate-lib.sh THEN its bundle carries each once, without their shebangs, and defines each subcommand's function before it dispatches", () => {
    expect(shFiles).toEqual(["migrate-finalize.sh", "migrate-lib.sh", "migrate-run.sh"]);
    expect([...(CARRIED_FILES.migrate ?? [])].filter((f) => f.endsWith(".sh")).sort()).toEqual(shFiles);
    const bundle = bundledScript("migrate");
    expect(bundle.match(/^#!/gm)).toHaveLength(1);
    for (const f of shFiles) expect(bundle.split(read(f).replace(/^#!.*\n/, ""))).toHaveLength(2);
    const dispatch = '\n"migrate_${mode}" "${@:6}"\n';
    expect(bundle.endsWith(dispatch)).toBe(true);
    // away from any checkout (cwd /), everything up to the dispatch: the functions exist, and the
    // guarded source line before it read nothing from disk
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-bundle-"));
    fs.mkdirSync(path.join(root, "src"));
    const r = spawnSync(
      "bash",
      ["-c", `${bundle.slice(0, -dispatch.length)}\ndeclare -F migrate_run migrate_finalize`, "migrate", "finalize", "m", "-", "/src", "/dst", "30"],
      {
        env: { ...process.env, ROOT: root },
        cwd: "/",
        encoding: "utf8",
      },
    );
    fs.rmSync(root, { recursive: true });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("migrate_run\nmigrate_finalize\n");
  });

  it("carries every .py file migrate.sh and its files run, each once, byte for byte", () => {
    const scripts = ["migrate.sh", ...shFiles].map(read).join("\n");
    const used = [...new Set([...scripts.matchAll(/(?:run_py|exec_py) (\S+\.py)/g)].map((m) => m[1]!))].sort();
    expect([...(CARRIED_FILES.migrate ?? [])].filter((f) => f.endsWith(".py")).sort()).toEqual(used);
    // what bash assigns is the file's text, quotes and all
    const bundle = bundledScript("migrate");
    const defs = bundle.slice(bundle.indexOf(`${carriedVariable(used[0]!)}='`), bundle.indexOf(read("migrate.sh").replace(/^#!.*\n/, "")));
    for (const file of used) {
      const r = spawnSync("bash", ["-c", `${defs}\nprintf %s "$${carriedVariable(file)}"`], { encoding: "utf8" });
      expect(r.stdout).toBe(fs.readFileSync(path.join(SCRIPTS_DIR, file), "utf8"));
    }
  });

  it("GIVEN the command run away from any checkout THEN the carried Python runs (finalize reads the state file through it)", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-bundle-"));
    fs.mkdirSync(path.join(root, "src"));
    fs.mkdirSync(path.join(root, "var/lib/dgx-storage/migrations"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/dgx-storage/migrations/m.json"), JSON.stringify({ state: "complete", completed_at: "2026-01-02T03:04:05Z" }));
    const cmd = scriptCommand("migrate", ["finalize", "m", "-", "/src", "/dst", "30"], { sudo: false });
    const r = spawnSync("bash", ["-c", cmd], { cwd: root, env: { ...process.env, ROOT: root }, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("migrate: migration m completed on 2026-01-02T03:04:05Z; nothing to do\n");
    fs.rmSync(root, { recursive: true });
  });
});

describe("migrate-tree.py serve (one interpreter for the whole run)", () => {
  it("GIVEN requests on stdin THEN it answers each with its exit status and output, reports failures without ending, and ends at the end of input", () => {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "tree-serve-"));
    try {
      for (const dir of ["src", "dst", "work"]) fs.mkdirSync(path.join(work, dir));
      fs.writeFileSync(path.join(work, "src", "a"), "same");
      fs.writeFileSync(path.join(work, "dst", "a"), "diff");
      // the same mtime on both, so that only the content differs: two writes a clock tick apart
      // would otherwise differ in metadata first, and verify names that
      for (const dir of ["src", "dst"]) fs.utimesSync(path.join(work, dir, "a"), 1_700_000_000, 1_700_000_000);
      fs.writeFileSync(path.join(work, "work", "list"), "a\0");
      const req = (...args: string[]) => [String(args.length), ...args].map((a) => `${a}\0`).join("");
      const [src, dst, w] = ["src", "dst", "work"].map((d) => path.join(work, d));
      const r = spawnSync("python3", [path.join(SCRIPTS_DIR, "migrate-tree.py"), "serve"], {
        input: req("verify", src!, dst!, w!, "final") + req("no-such-command") + req("verify", src!, src!, w!, "final"),
        encoding: "utf8",
      });
      expect(r.status).toBe(0);
      const lines = r.stdout.split("\n");
      expect(lines[0]).toMatch(/^ready \d+$/);
      // the content differs: status 1 and the entry named on stderr; a bad request: 1 and the usage
      expect(lines.slice(1)).toEqual(["1 ", "1 ", "0 1 4", ""]);
      expect(r.stderr).toContain("migrate: differs (content): a");
      expect(r.stderr).toContain("migrate-tree.py serve");
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });
});
