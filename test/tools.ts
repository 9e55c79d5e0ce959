/**
 * What a test needs from the machine: commands from the Debian packages of apt-packages.txt, and
 * sometimes root. Under `CI=true` a suite whose needs are not met fails, naming the package to
 * install; elsewhere it is skipped with the same sentence printed, so a developer without, say,
 * fio still runs everything else.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "vitest";
import { REPO } from "./harness";

/** apt-packages.txt: package name -> the commands the project calls from it. */
export function aptPackages(file = path.join(REPO, "apt-packages.txt")): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    const words = line.replace(/#.*/, "").trim().split(/\s+/).filter(Boolean);
    if (words.length > 0) out.set(words[0]!, words.slice(1));
  }
  return out;
}

/** The package of apt-packages.txt that provides `command`, if one is listed. */
export function packageOf(command: string): string | undefined {
  for (const [pkg, commands] of aptPackages()) if (commands.includes(command)) return pkg;
  return undefined;
}

/** Whether `command` is an executable on PATH (no process is started). */
export function onPath(command: string): boolean {
  return (process.env.PATH ?? "").split(":").some((dir) => {
    try {
      fs.accessSync(path.join(dir === "" ? "." : dir, command), fs.constants.X_OK);
      return fs.statSync(path.join(dir === "" ? "." : dir, command)).isFile();
    } catch {
      return false;
    }
  });
}

export interface Needs {
  /** Commands that must be on PATH; each must be listed in apt-packages.txt. */
  readonly tools?: readonly string[];
  /** The suite mounts loop devices or changes what only root may. */
  readonly root?: boolean;
}

/** What is missing, as one sentence naming the packages to install; undefined when nothing is. */
export function unmet(needs: Needs): string | undefined {
  const problems: string[] = [];
  const missing = (needs.tools ?? []).filter((t) => !onPath(t));
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((t) => packageOf(t) ?? `(no package lists ${t} in apt-packages.txt)`))];
    problems.push(
      `${missing.join(", ")} ${missing.length === 1 ? "is" : "are"} not installed: apt-get install ${pkgs.join(" ")} (or tools/install-deps.sh, which installs apt-packages.txt)`,
    );
  }
  if (needs.root && process.getuid?.() !== 0) problems.push("it needs root (loop devices, mounts)");
  return problems.length > 0 ? problems.join("; ") : undefined;
}

/** True under CI, where a missing tool fails instead of skipping. */
export const IN_CI = process.env.CI === "true" || process.env.CI === "1";

/**
 * `describe(name, body)` when `needs` are met. Otherwise: under CI a suite with one failing test
 * that names what to install; elsewhere a skipped suite, the same sentence printed.
 */
export function describeWith(needs: Needs, name: string, body: () => void): void {
  const why = unmet(needs);
  if (why === undefined) {
    describe(name, body);
  } else if (IN_CI) {
    describe(name, () => {
      it("has what it needs on this machine", () => {
        throw new Error(`${name}: ${why}`);
      });
    });
  } else {
    console.warn(`skipped "${name}": ${why}`);
    describe.skip(name, body);
  }
}

/** `it(name, body)` when `needs` are met; otherwise as `describeWith` does for a suite. */
export function itWith(needs: Needs, name: string, body: () => void | Promise<void>, timeout?: number): void {
  const why = unmet(needs);
  if (why === undefined) {
    it(name, body, timeout);
  } else if (IN_CI) {
    it(name, () => {
      throw new Error(`${name}: ${why}`);
    });
  } else {
    console.warn(`skipped "${name}": ${why}`);
    it.skip(name, body);
  }
}
