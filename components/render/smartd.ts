/**
 * Writer for /etc/smartd.conf: one line per configured NVMe device with the plan's thresholds
 * (phase 2.2: "SMART errors: immediate alert on critical errors", "Temperature: >70 °C alert").
 *
 * Directives (smartd.conf(5), smartmontools 7.x):
 *   -d nvme          the device type, so smartd does not probe it as ATA/SCSI
 *   -H               health: for NVMe the "Critical Warning" byte (spare, temperature, reliability,
 *                    read-only, volatile backup); any bit set is a warning at the next check
 *   -l error         warn when the NVMe error-log entry count grows
 *   -W DIFF,INFO,CRIT  "Report or Warn if the temperature is greater or equal than one of INFO or
 *                    CRIT": ">70 °C" is CRIT=71 (NVMe temperatures are whole degrees). DIFF 0 =
 *                    no report on changes; INFO (a LOG_INFO line only) is optional.
 *   -m ADD -M daily -M exec PATH  smartd "mails" through PATH; `<nomailer>` when there is no
 *                    address (the -M directives need an -m). PATH is the project's alert hook
 *                    (storage-alert.sh smartd ...): journal + webhook, the same path as the
 *                    storage checks. -M daily repeats a persisting problem once a day.
 * smartd checks every 30 minutes by default (`-i` on its command line, /etc/default/smartmontools).
 */
import { MANAGED_HEADER } from "./sysctl";

export interface SmartdDevice {
  /** e.g. /dev/nvme0 (controller) or /dev/nvme0n1, or a /dev/disk/by-id/ path. */
  readonly path: string;
  /**
   * The device may be absent at start (`-d removable`): smartd carries on instead of exiting.
   * @default false
   */
  readonly optional?: boolean;
}

export interface SmartdPlan {
  readonly devices: readonly SmartdDevice[];
  /** Alert when the temperature is above this, °C. @default 70 */
  readonly temperatureCriticalC?: number;
  /** Log (LOG_INFO, no alert) at this temperature or above, °C; 0 = off. @default 0 */
  readonly temperatureInfoC?: number;
  /** Mail address(es) for smartd's own mail, comma separated; none = `<nomailer>`. */
  readonly mailTo?: string;
  /** The executable smartd runs for a warning (`-M exec`). */
  readonly alertExec: string;
}

const DEVICE = /^\/dev\/[A-Za-z0-9_./:-]+$/;

/** The file text (a managed header, then one line per device). */
export function renderSmartdConf(plan: SmartdPlan): string {
  if (plan.devices.length === 0) throw new Error("smartd.conf needs at least one device");
  const crit = plan.temperatureCriticalC ?? 70;
  const info = plan.temperatureInfoC ?? 0;
  if (!Number.isInteger(crit) || crit < 1 || crit > 120) throw new Error(`temperatureCriticalC must be a whole number of degrees 1..120, got ${crit}`);
  if (!Number.isInteger(info) || info < 0 || (info > 0 && info > crit))
    throw new Error(`temperatureInfoC must be 0 (off) or a whole number up to ${crit}, got ${info}`);
  if (!/^\/[A-Za-z0-9_./-]+$/.test(plan.alertExec)) throw new Error(`alertExec must be an absolute path without spaces, got '${plan.alertExec}'`);
  const mail = plan.mailTo ?? "<nomailer>";
  if (!/^(<nomailer>|[A-Za-z0-9_.+@-]+(,[A-Za-z0-9_.+@-]+)*)$/.test(mail)) throw new Error(`mailTo must be addresses separated by commas, got '${mail}'`);
  const seen = new Set<string>();
  const lines = [MANAGED_HEADER, '# One line per NVMe device. -W DIFF,INFO,CRIT: CRIT is "greater or equal", so >70 C is 71.'];
  for (const d of plan.devices) {
    if (!DEVICE.test(d.path)) throw new Error(`not a device path: '${d.path}'`);
    if (seen.has(d.path)) throw new Error(`device listed twice: ${d.path}`);
    seen.add(d.path);
    const words = [d.path, "-d", "nvme"];
    if (d.optional) words.push("-d", "removable");
    words.push("-H", "-l", "error", "-W", `0,${info},${crit + 1}`, "-m", mail, "-M", "daily", "-M", "exec", plan.alertExec);
    lines.push(words.join(" "));
  }
  return lines.join("\n") + "\n";
}

/** Parses the device lines back ([device, directives]) for round-trip tests. */
export function parseSmartdConf(text: string): [string, string[]][] {
  return text
    .split("\n")
    .map((l) => l.replace(/#.*$/, "").trim())
    .filter((l) => l)
    .map((l) => {
      const [dev, ...rest] = l.split(/\s+/);
      return [dev!, rest];
    });
}
