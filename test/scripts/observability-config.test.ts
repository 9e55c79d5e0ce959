/**
 * observability-config.sh in a temporary root with the real promtool and amtool: a good config is
 * installed once (a second run changes nothing), the webhook URL comes from its file into
 * alertmanager.yml only, and a rule or config that does not pass the checks is refused with the
 * live files left as they were.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { expect, it } from "vitest";
import { ALERTMANAGER_WEBHOOK_FILE } from "../../components/observability";
import {
  ALERTMANAGER_ADDRESS,
  DEFAULT_THRESHOLDS,
  renderAlertmanagerYml,
  renderConsole,
  renderPrometheusYml,
  renderRules,
  renderTextfile,
} from "../../components/render/observability";
import { describeWith } from "../tools";
import { makeRoot, runScript } from "./run";

const URL = "https://ntfy.example/dgx-sentinel-topic-55d1";
const FILES = {
  prom: renderPrometheusYml({ targets: [{ host: "sark", address: "127.0.0.1:9100" }], scrapeIntervalSeconds: 15, evaluationIntervalSeconds: 15 }),
  rules: renderRules(DEFAULT_THRESHOLDS, 15),
  am: renderAlertmanagerYml({ webhook: true, groupWaitSeconds: 30, groupIntervalSeconds: 300, repeatIntervalMinutes: 240 }),
  console: renderConsole(DEFAULT_THRESHOLDS, 24),
};
const apply = (root: string, f = FILES) =>
  runScript("observability-config", ["apply", f.prom, f.rules, f.am, f.console, ALERTMANAGER_WEBHOOK_FILE], { ROOT: root });
const tree = (root: string) =>
  [
    "etc/prometheus/prometheus.yml",
    "etc/prometheus/rules/dgx-storage.rules.yml",
    "etc/prometheus/alertmanager.yml",
    "etc/prometheus/consoles/dgx-storage.html",
    "etc/default/prometheus-alertmanager",
  ].map((f) => {
    const p = path.join(root, f);
    return fs.existsSync(p) ? `${f} ${fs.statSync(p).mode.toString(8)} ${fs.statSync(p).mtimeMs} ${fs.readFileSync(p, "utf8").length}` : `${f} absent`;
  });

describeWith({ tools: ["promtool", "amtool"] }, "observability-config.sh", () => {
  it("GIVEN good files and the webhook file THEN all four installed, the URL in alertmanager.yml (0640); a second run changes nothing", () => {
    const root = makeRoot({ [ALERTMANAGER_WEBHOOK_FILE.slice(1)]: `${URL}\n` });
    const r = apply(root);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe("observability-config: Prometheus and Alertmanager configs checked and installed; prometheus reloaded; alertmanager restarted\n");
    // Alertmanager on the loopback address Prometheus is given, and no HA gossip port
    expect(fs.readFileSync(path.join(root, "etc/default/prometheus-alertmanager"), "utf8")).toContain(
      `ARGS="--web.listen-address=${ALERTMANAGER_ADDRESS} --cluster.listen-address="\n`,
    );
    expect(fs.readFileSync(path.join(root, "etc/prometheus/prometheus.yml"), "utf8")).toBe(FILES.prom);
    const am = fs.readFileSync(path.join(root, "etc/prometheus/alertmanager.yml"), "utf8");
    expect(am).toBe(FILES.am.replace("__DGX_ALERT_WEBHOOK_URL__", JSON.stringify(URL)));
    expect(fs.statSync(path.join(root, "etc/prometheus/alertmanager.yml")).mode & 0o777).toBe(0o640);
    const before = tree(root);
    const again = apply(root);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe("observability-config: Prometheus and Alertmanager configs unchanged\n");
    expect(tree(root)).toEqual(before);
    expect(fs.readdirSync(path.join(root, "etc/prometheus")).filter((f) => f.startsWith("."))).toEqual([]);
  });

  it("GIVEN a rule that does not parse, or an Alertmanager config with an unknown key THEN refused, the last good files kept", () => {
    const root = makeRoot({ [ALERTMANAGER_WEBHOOK_FILE.slice(1)]: `${URL}\n` });
    expect(apply(root).code).toBe(0);
    const good = tree(root);
    const badRules = apply(root, {
      ...FILES,
      rules: FILES.rules.replace('up{job="node"} == 0', 'up{job="node"} === 0'),
      prom: FILES.prom.replace("15s", "5s"),
    });
    expect(badRules.code).toBe(1);
    expect(badRules.stderr).toContain("could not parse expression");
    expect(badRules.stderr).toContain("the rules do not pass promtool check rules; the live config is unchanged");
    const badAm = apply(root, { ...FILES, am: FILES.am.replace("group_by:", "group_byy:") });
    expect(badAm.code).toBe(1);
    expect(badAm.stderr).toContain("alertmanager.yml does not pass amtool check-config; the live config is unchanged");
    expect(tree(root)).toEqual(good);
  });

  it("GIVEN a config that names the webhook but no URL file THEN refused before any check", () => {
    const root = makeRoot();
    const r = apply(root);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Alertmanager's config names a webhook, but ${ALERTMANAGER_WEBHOOK_FILE} is missing or empty`);
    expect(tree(root).every((l) => l.endsWith("absent"))).toBe(true);
  });

  it("textfile: writes the static file once; refuses a path outside the textfile directory", () => {
    const root = makeRoot();
    const text = renderTextfile([{ name: "dgx_backup_max_age_seconds", help: "h", labels: { backup_job: "create-daily" }, value: 129600 }]);
    const file = "/var/lib/prometheus/node-exporter/dgx_static.prom";
    expect(runScript("observability-config", ["textfile", file, text], { ROOT: root }).code).toBe(0);
    expect(fs.readFileSync(path.join(root, file), "utf8")).toBe(text);
    const m = fs.statSync(path.join(root, file)).mtimeMs;
    expect(runScript("observability-config", ["textfile", file, text], { ROOT: root }).code).toBe(0);
    expect(fs.statSync(path.join(root, file)).mtimeMs).toBe(m);
    const bad = runScript("observability-config", ["textfile", "/etc/passwd", text], { ROOT: root });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("is not a .prom file in /var/lib/prometheus/node-exporter");
  });
});
