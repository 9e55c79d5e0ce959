import * as fs from "node:fs";
import { describe, expect, it } from "vitest";
import { CONFIG_DOC, renderConfigReference } from "../../tools/config-docs";

describe("docs/config.md: generated from the schema (npm run docs:config)", () => {
  const text = renderConfigReference();
  const rows = text.split("\n").filter((l) => l.startsWith("| `"));
  const row = (key: string) => rows.find((l) => l.startsWith(`| \`${key}\` |`));

  it("GIVEN the committed file THEN it is exactly what the generator writes", () => {
    expect(fs.readFileSync(CONFIG_DOC, "utf8")).toBe(text);
  });

  it("shows defaults and bounds read from the schema, and the meta descriptions", () => {
    expect(row("host.ssh.port")).toBe("| `host.ssh.port` | port 1..65535 | `22` | SSH port. |");
    expect(row("docker.daemon.logOpts.maxFile")).toBe("| `docker.daemon.logOpts.maxFile` | whole number 1..100 | `5` | `log-opts.max-file`. |");
    expect(row("monitoring.usage")).toContain('| {warning, critical} | `{"warning": 80, "critical": 90}` |');
    expect(row("host.sudo")).toContain("| true unless `ssh.user` is root |");
    expect(row("swarm.role")).toBe(
      "| `swarm.role` | manager, worker | required with `swarm` | `manager` initialises the swarm; `worker` joins the manager's. |",
    );
    expect(row("volumes[].name")).toContain("| required with `volumes[]` |");
    expect(row("borgPassphrase")).toContain("| required with `backup` |");
  });

  it("gives every field a meaning: a field without a description fails here", () => {
    const undocumented = rows.filter((l) => l.endsWith("|  |")).map((l) => l.split(" | ")[0]);
    expect(undocumented).toEqual([]);
    // one row per field: no key twice
    const keys = rows.map((l) => l.split(" | ")[0]);
    expect(new Set(keys).size).toBe(keys.length);
    expect(rows.length).toBeGreaterThan(100);
  });
});
