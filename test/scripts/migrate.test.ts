import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { expect, it, vi } from "vitest";
import { bundledScript } from "../../components/render/command";
import { describeWith } from "../tools";
import { expectIdentical, fidelityTree, finalCount, HOST_PATH, migrate, MIGRATE_TOOLS, newRoot } from "./migrate-fixtures";
import { runScript, snapshotTree } from "./run";

// each case runs migrate.sh for real
vi.setConfig({ testTimeout: 120_000 });

const run = (root: string, src = "/src", dst = "/dst", extra: Record<string, string> = {}) => migrate(root, extra, src, dst);
const finalize = (root: string) => runScript("migrate", ["finalize", "chroma", "-", "/src", "/dst", "30"], { ROOT: root, PATH: HOST_PATH });

describeWith({ tools: MIGRATE_TOOLS, root: true }, "migrate.sh (the copy and verification engine, no container)", () => {
  it("GIVEN the fidelity tree WHEN migrated THEN the trees are identical in content, owners, modes, links, xattrs and ACLs, sparse stays sparse", () => {
    const root = newRoot();
    fidelityTree(root);
    const r = run(root);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/migration chroma verified: \d+ bytes copied, \d+ files verified/);
    expectIdentical(root);
    // allocated blocks of the 64 MiB sparse file stay small
    const blocks = Number(execFileSync("stat", ["-c", "%b", path.join(root, "dst/sparse")], { encoding: "utf8" }));
    expect(blocks * 512).toBeLessThan(1024 * 1024);
    const marker = JSON.parse(fs.readFileSync(path.join(root, "var/lib/dgx-storage/migrations/chroma.json"), "utf8"));
    expect(marker).toMatchObject({ state: "verified", source: "/src", destination: "/dst" });
  });

  it("GIVEN every kind of change after pass 1 THEN only the changed entries are copied again, and the trees end identical", () => {
    const root = newRoot();
    fidelityTree(root);
    // the tree predates pass 1 by more than the two seconds of slack, as a service's data does
    execFileSync("bash", ["-c", `find "${root}/src" -exec touch -h -d '-10 seconds' {} +`]);
    execFileSync("sleep", ["3"]);
    const changes = `set -e; cd "${root}/src"
      echo more >> a/file.txt                                   # content (and its hard link)
      printf 'same' > same && touch -d '-1 hour' same; printf 'SAME' > same2 && touch -r same same2 && mv same2 same  # same size, mtime put back
      setfattr -n user.stage -v 2 a/b/c/random.bin              # xattr only
      setfacl -m u:4321:rw owned                                # ACL only
      chmod 0600 empty; chown 300:300 setuid                    # mode, owner
      echo new > a/b/new.txt; ln a/b/new.txt a/new-hardlink     # new file, new hard link
      mv dangling-link a/moved-link                             # rename
      rm a/b/rel-link; rm -r a/b/c                              # deletions, a whole directory
      mkdir -p x/y && echo deep > x/y/z                         # new directories`;
    const r = run(root, "/src", "/dst", { MIGRATE_AFTER_PASS1: changes });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    // the changes go in a live pass, the service still running; the final pass finds none left
    const live = Number(/live pass 1 \(service running\): (\d+) changed entries copied/.exec(r.stdout)?.[1]);
    expect(live).toBeGreaterThan(5);
    expect(live).toBeLessThan(25); // the delta, not the tree
    expect(finalCount(r.stdout)).toBe(0);
    expectIdentical(root);
  });

  it("GIVEN a verified migration THEN a re-run copies nothing; finalize completes it; later runs change nothing", () => {
    const root = newRoot();
    fidelityTree(root);
    expect(run(root).code).toBe(0);
    const again = run(root);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("verified and the destination is unchanged; nothing to do");
    const f = finalize(root);
    expect(f.code).toBe(0);
    expect(f.stdout).toMatch(/migration chroma complete: \d+ bytes copied, \d+ files verified, downtime [\d.]+ s/);
    const tree = snapshotTree(path.join(root, "dst"));
    // new data on the destination, then a re-run: never copies the source over it
    fs.writeFileSync(path.join(root, "src/a/file.txt"), "stale source\n");
    const later = run(root);
    expect(later.code).toBe(0);
    expect(later.stdout).toContain("completed on");
    expect(snapshotTree(path.join(root, "dst"))).toEqual(tree);
  });

  it("GIVEN a file changed in the destination after verification THEN the re-run reports it and does not overwrite it", () => {
    const root = newRoot();
    fidelityTree(root);
    expect(run(root).code).toBe(0);
    fs.writeFileSync(path.join(root, "dst/a/b/c/random.bin"), "changed after verification");
    const r = run(root);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: the destination /dst changed after migration chroma was verified; not copying over it");
    expect(r.stderr).toContain("a/b/c/random.bin");
    expect(fs.readFileSync(path.join(root, "dst/a/b/c/random.bin"), "utf8")).toBe("changed after verification");
  });

  it("GIVEN a partial copy from an interrupted run THEN it resumes; a foreign non-empty destination is refused", () => {
    const root = newRoot();
    fidelityTree(root);
    fs.mkdirSync(path.join(root, "dst"));
    fs.writeFileSync(path.join(root, "dst/foreign.txt"), "not ours");
    const refused = run(root);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("the destination /dst is not empty and holds no earlier run of migration chroma; nothing was touched");
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage/migrations/chroma.json"))).toBe(false);
    // an interrupted run: marker "copying" and part of the tree
    fs.rmSync(path.join(root, "dst"), { recursive: true });
    fs.mkdirSync(path.join(root, "dst"));
    fs.mkdirSync(path.join(root, "var/lib/dgx-storage/migrations"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/dgx-storage/migrations/chroma.json"), JSON.stringify({ state: "copying", source: "/src", destination: "/dst" }));
    execFileSync("rsync", ["-a", path.join(root, "src/a/"), path.join(root, "dst/a/")]);
    fs.writeFileSync(path.join(root, "dst/leftover-deleted-in-source"), "x");
    const r = run(root);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("resuming migration chroma");
    expectIdentical(root);
  });

  it.each([
    ["a missing source", "/nope", "/dst", "the source /nope does not exist"],
    ["source equal to destination", "/src", "/src", "source and destination are the same path"],
    ["destination inside the source", "/src", "/src/new", "the destination /src/new is inside the source /src"],
    ["the root as destination (a trailing '/', not a normalised path)", "/src", "/", "'/' is not a normalised path"],
    ["source inside the destination", "/data/src", "/data", "the source /data/src is inside the destination /data"],
    ["a relative source", "src", "/dst", "'src' is not an absolute path"],
    ["a relative destination", "/src", "dst", "'dst' is not an absolute path"],
  ])("GIVEN %s THEN a clear error and nothing touched", (_what, src, dst, message) => {
    const root = newRoot();
    fidelityTree(root);
    const before = snapshotTree(root);
    const r = run(root, src, dst);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(snapshotTree(root)).toEqual(before);
  });

  it("GIVEN a destination too small THEN pre-flight stops with the sizes, nothing touched", () => {
    const root = newRoot();
    fidelityTree(root);
    fs.writeFileSync(path.join(root, "src/big.bin"), Buffer.alloc(3 * 1024 * 1024, 1));
    fs.mkdirSync(path.join(root, "small"));
    const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", path.join(root, "small")]);
    expect(mounted.status, "this test needs root to mount a 1 MiB tmpfs").toBe(0);
    const r = run(root, "/src", "/small/dst");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/not enough room for \/small\/dst: the source takes .*, with the 10% margin .* more are needed, .* are free; nothing was touched/);
    expect(fs.readdirSync(path.join(root, "small"))).toEqual([]);
  });
});

describeWith({ tools: [...MIGRATE_TOOLS, "borg"], root: true }, "migrate.sh snapshot=borg:... (the archive before anything is touched)", () => {
  const REPO = "/mnt/borg-backup";
  const PASS = "the-backup-repository-passphrase";

  it.each([
    ["missing", (file: string) => fs.rmSync(file)],
    ["wrong", (file: string) => fs.writeFileSync(file, "not-the-passphrase-of-this-repository\n", { mode: 0o600 })],
  ])("GIVEN the repository's pass file %s THEN the archive fails and migrate.sh stops, nothing touched", (_what, breakPassFile) => {
    const root = newRoot();
    fidelityTree(root);
    // a stand-in logger, so borg-run.sh's alert does not reach this machine's journal
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "dgx-bin-"));
    fs.writeFileSync(path.join(bin, "logger"), "#!/usr/bin/env bash\n", { mode: 0o755 });
    const env = { ROOT: root, PATH: `${bin}:${process.env.PATH}` };
    // the backup component's repository, pass file and runner, as on a host
    const setup = runScript("borg-repo", ["apply", "sark", REPO], env, { input: `${PASS}\n`, timeoutMs: 120_000 });
    expect(setup.stderr).toBe("");
    expect(setup.code).toBe(0);
    const runner = path.join(root, "usr/local/lib/dgx-storage/borg-run.sh");
    fs.mkdirSync(path.dirname(runner), { recursive: true });
    fs.writeFileSync(runner, bundledScript("borg-run"), { mode: 0o755 });
    breakPassFile(path.join(root, "etc/dgx-storage/borg/sark.pass"));
    // borg-run.sh's consistent copy of the source's SQLite database runs before borg fails and
    // opens it as the running service would: SQLite adds its -wal and -shm files (and so moves
    // the directory's mtime); every file there was is unchanged
    const files = () => Object.fromEntries(Object.entries(snapshotTree(path.join(root, "src"))).filter(([p]) => p !== "/" && !/-(wal|shm)$/.test(p)));
    const source = files();

    const r = runScript("migrate", ["run", "chroma", "-", "/src", "/dst", "-", "10", "30", `borg:sark:sark:${REPO}`], env, { timeoutMs: 120_000 });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      "migrate: error: the borg archive of /src failed (a repository locked out counts as a failure); nothing was copied and the service was not stopped",
    );
    expect(fs.existsSync(path.join(root, "dst"))).toBe(false);
    expect(fs.existsSync(path.join(root, "var/lib/dgx-storage/migrations/chroma.json"))).toBe(false);
    expect(files()).toEqual(source);
  });
});
