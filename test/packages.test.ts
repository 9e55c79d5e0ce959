/**
 * Every external command that the project's shell scripts, tests and benchmarks call must come
 * from a package of apt-packages.txt or from the base system, so that a fresh machine that runs
 * tools/install-deps.sh has all of them, and the next new tool cannot be forgotten.
 *
 * The commands of a shell file are read from its syntax tree (`shfmt --to-json`), not guessed with
 * a regular expression: every simple command whose name is a literal word, and the command behind
 * a wrapper such as `timeout 5 fio`, `flock <file> borg` or `sudo -n rsync`. TypeScript files name
 * theirs in `spawnSync("fio", ...)`-style calls. Commands in a string handed to `ssh` or `docker
 * exec` run on the test hosts, whose image has its own list (test/hosts/packages.txt).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { REPO } from "./harness";
import { aptPackages, describeWith } from "./tools";

/** bash's builtins and keywords (bash(1), "SHELL BUILTIN COMMANDS"). */
const BUILTINS = new Set(
  (
    ": . [ [[ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown echo enable eval exec exit " +
    "export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set " +
    "shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait"
  ).split(" "),
);

/** What the machine brings before the project installs anything: Node.js with npm, and git to clone. */
const MACHINE = new Set(["node", "npm", "npx", "git"]);

/**
 * Named in a call that never starts: test/network-guard.test.ts shows the guard refusing
 * `curl http://<server>` before any process exists.
 */
const NEVER_STARTED = new Set(["curl"]);

/**
 * Wrappers that run the command that follows them, with the options of theirs that take a value
 * (so that value is not read as the command) and how many plain words come before the command.
 */
const WRAPPERS: Record<string, { readonly valued: readonly string[]; readonly words: number }> = {
  sudo: { valued: ["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"], words: 0 },
  exec: { valued: ["-a"], words: 0 },
  command: { valued: [], words: 0 },
  nohup: { valued: [], words: 0 },
  setsid: { valued: [], words: 0 },
  time: { valued: [], words: 0 },
  nice: { valued: ["-n"], words: 0 },
  ionice: { valued: ["-c", "-n", "-p", "-P", "-u"], words: 0 },
  env: { valued: ["-u", "-C", "-S"], words: 0 },
  stdbuf: { valued: ["-i", "-o", "-e"], words: 0 },
  timeout: { valued: ["-k", "-s", "--kill-after", "--signal"], words: 1 },
  flock: { valued: ["-w", "-E", "--timeout", "--conflict-exit-code"], words: 1 },
  xargs: { valued: ["-a", "-d", "-E", "-I", "-L", "-n", "-P", "-s", "--arg-file", "--delimiter", "--max-args", "--max-procs"], words: 0 },
  unshare: { valued: [], words: 0 },
  "systemd-run": {
    valued: ["-u", "-p", "-E", "--unit", "--property", "--setenv", "--description", "--slice", "--uid", "--gid", "--working-directory"],
    words: 0,
  },
};

export interface Call {
  readonly command: string;
  readonly file: string;
  readonly line: number;
}

interface Word {
  readonly Parts?: readonly {
    readonly Type: string;
    readonly Value?: string;
    readonly Parts?: readonly { readonly Type: string; readonly Value?: string }[];
  }[];
  readonly Pos: { readonly Line: number };
}

/** A word's text when it is literal throughout (plain, 'single' or "double" quoted), else undefined. */
function literal(w: Word | undefined): string | undefined {
  if (!w?.Parts) return undefined;
  let out = "";
  for (const p of w.Parts) {
    if (p.Type === "Lit" || p.Type === "SglQuoted") out += p.Value ?? "";
    else if (p.Type === "DblQuoted" && (p.Parts ?? []).every((q) => q.Type === "Lit")) out += (p.Parts ?? []).map((q) => q.Value ?? "").join("");
    else return undefined;
  }
  return out;
}

/** The commands a shell file runs, and the functions it defines, from shfmt's syntax tree. */
export function shellCalls(file: string): { calls: Call[]; functions: Set<string> } {
  const r = spawnSync("shfmt", ["--to-json"], { input: fs.readFileSync(file, "utf8"), encoding: "utf8", maxBuffer: 256 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`shfmt could not parse ${file}: ${r.stderr}`);
  const calls: Call[] = [];
  const functions = new Set<string>();
  const rel = path.relative(REPO, file);
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== "object") return;
    const n = node as Record<string, unknown>;
    if (n.Type === "FuncDecl") functions.add(String((n.Name as { Value?: string }).Value));
    if (n.Type === "CallExpr") {
      const args = (n.Args ?? []) as Word[];
      let i = 0;
      while (i < args.length) {
        const name = literal(args[i]);
        if (name === undefined || name === "" || name.includes("=")) break;
        const command = name.startsWith("/") ? path.basename(name) : name;
        if (command.includes("/")) break; // ./script or dir/script: the project's own file
        calls.push({ command, file: rel, line: args[i]!.Pos.Line });
        const wrapper = WRAPPERS[command];
        if (!wrapper) break;
        i++;
        // the wrapper's options, VAR=value words for env, then its plain words (timeout's duration)
        let words = wrapper.words;
        while (i < args.length) {
          const a = literal(args[i]);
          if (a === "--") {
            i++;
            break;
          }
          if (a !== undefined && a.startsWith("-")) {
            i += wrapper.valued.includes(a) ? 2 : 1;
            continue;
          }
          if (a !== undefined && command === "env" && a.includes("=")) {
            i++;
            continue;
          }
          if (words > 0) {
            words--;
            i++;
            continue;
          }
          break;
        }
      }
    }
    for (const v of Object.values(n)) if (v && typeof v === "object") visit(v);
  };
  visit(JSON.parse(r.stdout));
  return { calls, functions };
}

/** The commands TypeScript files start by name: `spawnSync("fio", ...)`, `execFileSync("borg", ...)`. */
export function tsCalls(file: string): Call[] {
  const rel = path.relative(REPO, file);
  const out: Call[] = [];
  fs.readFileSync(file, "utf8")
    .split("\n")
    .forEach((text, i) => {
      for (const m of text.matchAll(/\b(?:spawnSync|spawn|execFileSync|execFile)\(\s*"([^"/\s]+)"/g)) out.push({ command: m[1]!, file: rel, line: i + 1 });
    });
  return out;
}

function filesUnder(dir: string, test: (name: string) => boolean): string[] {
  const abs = path.join(REPO, dir);
  if (!fs.existsSync(abs)) return [];
  return fs
    .readdirSync(abs, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

const SHELL_FILES = [
  ...filesUnder("components/scripts", (n) => n.endsWith(".sh")),
  ...filesUnder("test/hosts", (n) => n.endsWith(".sh")),
  ...filesUnder("tools", (n) => n.endsWith(".sh")),
  path.join(REPO, ".ci/run"),
];
const TS_FILES = [
  ...filesUnder("test", (n) => n.endsWith(".ts")),
  ...filesUnder("tools", (n) => n.endsWith(".ts")),
  ...filesUnder("bench", (n) => n.endsWith(".ts")),
];

/** Every external command the project calls, with where, once per command (first place seen). */
function externalCalls(): Call[] {
  const functions = new Set<string>();
  const calls: Call[] = [];
  for (const f of SHELL_FILES) {
    const r = shellCalls(f);
    r.functions.forEach((fn) => functions.add(fn));
    calls.push(...r.calls);
  }
  for (const f of TS_FILES) calls.push(...tsCalls(f));
  const seen = new Map<string, Call>();
  for (const c of calls) if (!BUILTINS.has(c.command) && !functions.has(c.command) && !seen.has(c.command)) seen.set(c.command, c);
  return [...seen.values()].sort((a, b) => a.command.localeCompare(b.command));
}

const SYSTEM_PATH = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** The candidates under which dpkg may know a file: itself, its real path, and its merged-/usr twin. */
function dpkgNames(file: string): string[] {
  return [...new Set([file, fs.realpathSync(file), file.replace(/^\/usr\//, "/"), file.startsWith("/usr/") ? file : `/usr${file}`])];
}

/** What dpkg knows of this machine, read in three calls rather than one per command. */
interface Dpkg {
  /** Where a command is in the system PATH and which package owns it ("" for none). */
  owner(command: string): { file: string; pkg: string } | undefined;
  /** Essential or Priority required: what debootstrap --variant=minbase installs. */
  isBase(pkg: string): boolean;
  /** The packages `pkg` depends on directly (python3 -> python3-minimal, which owns /usr/bin/python3). */
  dependencies(pkg: string): string[];
}

function readDpkg(commands: readonly string[]): Dpkg {
  const found = new Map(commands.map((c) => [c, SYSTEM_PATH.map((dir) => path.join(dir, c)).filter((f) => fs.existsSync(f))]));
  const names = [...new Set([...found.values()].flat().flatMap(dpkgNames))];
  const owners = new Map<string, string>();
  const s = spawnSync("dpkg-query", ["-S", ...names], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  for (const line of s.stdout.split("\n")) {
    const m = /^([^:]+): (\/.*)$/.exec(line);
    if (m) owners.set(m[2]!, m[1]!.split(",")[0]!.trim());
  }
  const fields = new Map<string, { base: boolean; depends: string[] }>();
  const w = spawnSync("dpkg-query", ["-W", "-f", "${Package}\t${Essential}\t${Priority}\t${Depends},${Pre-Depends}\n"], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const line of w.stdout.split("\n")) {
    const [pkg, essential, priority, depends] = line.split("\t");
    if (!pkg) continue;
    fields.set(pkg, {
      base: essential === "yes" || priority === "required",
      depends: (depends ?? "")
        .split(/[,|]/)
        .map((d) => d.trim().split(/[\s:(]/)[0]!)
        .filter(Boolean),
    });
  }
  return {
    owner(command) {
      const files = found.get(command) ?? [];
      if (files.length === 0) return undefined;
      // a file of a package wins over one no package owns (a hand-installed client in /usr/local/bin)
      for (const file of files) {
        const pkg = dpkgNames(file)
          .map((n) => owners.get(n))
          .find(Boolean);
        if (pkg) return { file, pkg };
      }
      return { file: files[0]!, pkg: "" };
    },
    isBase: (pkg) => fields.get(pkg)?.base === true,
    dependencies: (pkg) => fields.get(pkg)?.depends ?? [],
  };
}

describe("the commands the project calls", () => {
  it("are read from shell syntax trees, through wrappers, leaving out builtins and the files' own functions", () => {
    const dir = fs.mkdtempSync(path.join(REPO, "node_modules", ".cmd-scan-"));
    const file = path.join(dir, "x.sh");
    fs.writeFileSync(
      file,
      [
        'helper() { rsync -a "$1" /x; }',
        "timeout -s KILL 5 fio --version | grep -q fio && sudo -n -u root borg list",
        "v=$(flock -w 9 /run/l.lock systemd-run --unit e2e -p X=1 sqlite3 db 'select 1')",
        "cat <<EOF",
        "not-a-command here",
        "EOF",
        "\"$VAR\" arg; local x; helper; /usr/sbin/smartd -q onecheck; env A=1 B=2 python3 -c 'print(1)'",
      ].join("\n"),
    );
    try {
      const { calls, functions } = shellCalls(file);
      expect([...functions]).toEqual(["helper"]);
      expect(calls.map((c) => c.command)).toEqual([
        "rsync",
        "timeout",
        "fio",
        "grep",
        "sudo",
        "borg",
        "flock",
        "systemd-run",
        "sqlite3",
        "cat",
        "helper",
        "smartd",
        "env",
        "python3",
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("are installed by the list the README's set-up quotes, word for word", () => {
    const readme = fs.readFileSync(path.join(REPO, "README.md"), "utf8");
    const block = /<!-- apt-packages:begin -->\n([^]*?)\n<!-- apt-packages:end -->/.exec(readme)?.[1];
    expect(block, "README.md has no apt-packages block").toBeDefined();
    expect([...block!.matchAll(/`([^`]+)`/g)].map((m) => m[1])).toEqual([...aptPackages().keys()]);
    expect(readme).toContain("sudo tools/install-deps.sh --apt && npm ci && npm run synth -- sark");
    expect(fs.readFileSync(path.join(REPO, ".ci/run"), "utf8")).toMatch(/^tools\/install-deps\.sh$/m);
  });

  describeWith({ tools: ["shfmt", "dpkg-query"] }, "on this Debian machine", () => {
    it("each come from a package of apt-packages.txt or from the base system, and the list says which", () => {
      const listed = aptPackages();
      const problems: string[] = [];
      const calls = externalCalls();
      const dpkg = readDpkg(calls.map((c) => c.command));
      for (const c of calls) {
        if (MACHINE.has(c.command) || NEVER_STARTED.has(c.command)) continue;
        const claimed = [...listed].find(([, cmds]) => cmds.includes(c.command))?.[0];
        const owner = dpkg.owner(c.command);
        const at = `${c.command} (${c.file}:${c.line})`;
        if (!owner) {
          problems.push(
            `${at} is not installed, and ${claimed ? `its package ${claimed} is listed but not installed: run tools/install-deps.sh` : "no package of apt-packages.txt provides it: add it"}`,
          );
        } else if (claimed && owner.pkg !== claimed && !dpkg.dependencies(claimed).includes(owner.pkg)) {
          problems.push(`${at}: apt-packages.txt says ${claimed}, but ${owner.file} belongs to ${owner.pkg === "" ? "no package" : owner.pkg}`);
        } else if (!claimed && !(owner.pkg && dpkg.isBase(owner.pkg))) {
          const pkg = owner.pkg === "" ? undefined : owner.pkg;
          problems.push(
            `${at} comes from ${pkg ?? `${owner.file}, which no package owns`}: add "${pkg ?? "<its package>"}  ${c.command}" to apt-packages.txt (it is not in the base system)`,
          );
        }
      }
      expect(problems).toEqual([]);
    });

    it("lists every tool a suite declares it needs (describeWith), so the failure can name the package", () => {
      const declared = TS_FILES.flatMap((f) =>
        [...fs.readFileSync(f, "utf8").matchAll(/tools:\s*\[([^\]]*)\]/g)].flatMap((m) =>
          [...m[1]!.matchAll(/"([^"]+)"/g)].map((t) => ({ tool: t[1]!, file: path.relative(REPO, f) })),
        ),
      );
      const listed = new Set([...aptPackages().values()].flat());
      const dpkg = readDpkg(declared.map((d) => d.tool));
      const base = (tool: string) => dpkg.isBase(dpkg.owner(tool)?.pkg ?? "");
      expect(declared.length).toBeGreaterThan(0);
      expect(
        declared.filter((d) => !listed.has(d.tool) && !base(d.tool)).map((d) => `${d.file}: ${d.tool} (not in apt-packages.txt, not in the base system)`),
      ).toEqual([]);
    });
  });
});
