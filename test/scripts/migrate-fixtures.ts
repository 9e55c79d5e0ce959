/** What the migrate.sh tests share: the trees they build and the checks that compare them. */
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, expect } from "vitest";
import { makeRoot, runScript, type ScriptResult } from "./run";

/** The tools the migration tests call (apt-packages.txt names their packages). */
export const MIGRATE_TOOLS = ["rsync", "python3", "inotifywait", "setfattr", "getfattr", "setfacl", "getfacl", "sqlite3"] as const;

/**
 * The Debian python3 first on PATH, as on the servers: a version manager's shim (pyenv's) takes
 * ten times longer to start, and migrate.sh starts python3 a dozen times.
 */
export const HOST_PATH = `/usr/bin:${process.env.PATH ?? ""}`;

const roots: string[] = [];
/** A fresh ROOT, unmounted and removed after the file's tests. */
export function newRoot(): string {
  const r = makeRoot();
  roots.push(r);
  return r;
}
// the roots hold trees of thousands of files: their removal takes tens of seconds on a loaded machine
afterAll(() => {
  for (const r of roots) {
    spawnSync("umount", [path.join(r, "small")]);
    fs.rmSync(r, { recursive: true, force: true });
  }
}, 300_000);

/** `migrate.sh run chroma - <src> <dst> - 10 30 none` under `root`; `env` adds the test hooks. */
export function migrate(root: string, env: Record<string, string> = {}, src = "/src", dst = "/dst", timeoutMs = 120_000): ScriptResult {
  return runScript("migrate", ["run", "chroma", "-", src, dst, "-", "10", "30", "none"], { ROOT: root, PATH: HOST_PATH, ...env }, { timeoutMs });
}

/** Runs a bash snippet in `dir`. */
export function sh(dir: string, cmd: string): string {
  return execFileSync("bash", ["-euc", cmd], { cwd: dir, encoding: "latin1", maxBuffer: 256 << 20 });
}

/** The fidelity tree under ROOT/src: every kind of entry and attribute rsync -aHAX keeps. */
export function fidelityTree(root: string): void {
  const s = path.join(root, "src");
  fs.mkdirSync(path.join(s, "a/b/c"), { recursive: true });
  sh(
    s,
    `echo hello > a/file.txt
    ln a/file.txt a/b/hardlink.txt
    ln -s ../file.txt a/b/rel-link
    ln -s /nonexistent/target dangling-link
    : > empty
    printf 'x' > owned && chown 100:200 owned
    printf '#!/bin/sh\\n' > setuid && chmod 4755 setuid
    mkfifo fifo
    truncate -s 64M sparse && printf 'tail' | dd of=sparse bs=1 seek=$((32*1024*1024)) conv=notrunc status=none
    setfattr -n user.origin -v sark a/file.txt
    setfacl -m u:1234:r a/b/c
    head -c 300000 /dev/urandom > a/b/c/random.bin
    chmod 0640 a/b/c/random.bin
    sqlite3 db.sqlite 'PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);' >/dev/null 2>&1 || printf 'not sqlite' > db.sqlite`,
  );
}

/**
 * Everything that must survive, read without the script's help: type, mode, owner, size, link
 * count, mtime, link target, content, xattrs, ACLs, and which names share an inode. Names are
 * kept byte for byte (latin1: one character per byte).
 */
export function manifest(dir: string): string {
  // a directory's size depends on the filesystem's history of it (rsync does not copy it)
  const entries = sh(dir, `find . -printf '%P\\t%y %m %U:%G %s %n %T@ %l\\0' | sort -z | tr '\\0' '\\n'`)
    .split("\n")
    .map((line) => line.replace(/^([^\t]*\td \S+ \S+ )\d+/, "$1-"))
    .join("\n");
  const sums = sh(dir, `find . -type f -print0 | xargs -0 -r sha256sum -z | sort -z -k2 | tr '\\0' '\\n'`);
  const attrs = sh(dir, `{ getfattr -R -d -m - --absolute-names . 2>/dev/null; getfacl -R -p . 2>/dev/null; } || true`);
  const groups = new Map<string, string[]>();
  for (const rec of sh(dir, `find . -type f -links +1 -printf '%i %P\\0'`).split("\0").filter(Boolean)) {
    const at = rec.indexOf(" ");
    groups.set(rec.slice(0, at), [...(groups.get(rec.slice(0, at)) ?? []), rec.slice(at + 1)]);
  }
  const links = [...groups.values()].map((g) => g.sort().join(" = ")).sort();
  return [entries, sums, attrs, ...links].join("\n");
}

/** rsync's own view, by content (-c): what it would transfer or delete; "" when nothing. */
export function rsyncDifferences(src: string, dst: string): string {
  return execFileSync("rsync", ["-aHAXnc", "--delete", "-i", "--modify-window=-1", `${src}/`, `${dst}/`], { encoding: "latin1", maxBuffer: 256 << 20 });
}

/** ROOT/src and ROOT/dst identical, checked two ways apart from the script. */
export function expectIdentical(root: string): void {
  expect(rsyncDifferences(path.join(root, "src"), path.join(root, "dst"))).toBe("");
  expect(manifest(path.join(root, "dst"))).toBe(manifest(path.join(root, "src")));
}

/** The number a log line reports, e.g. finalCount(r.stdout) for "final pass ...: N changed entries". */
export function finalCount(stdout: string): number {
  return Number(/final pass \(service stopped\): (\d+) changed entries/.exec(stdout)?.[1]);
}
