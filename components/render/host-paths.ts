/**
 * Where the project keeps its own files on a host: the one definition. The TypeScript side builds
 * its file paths from these; every script gets them as shell variables at the top of its bundle
 * (`bundledScript`), so the units' installed copies and the detached runs carry them too, and
 * lib.sh refuses to run without them (a test run from a checkout, with `ROOT=`, may omit them).
 */
export const HOST_PATHS = {
  /** Configuration and secret files (borg pass files, the alert webhook, the firewall ruleset). */
  etc: "/etc/dgx-storage",
  /** Installed copies of the scripts the units run. */
  lib: "/usr/local/lib/dgx-storage",
  /** State that must survive a reboot: borg's base dir, migration and adoption records, backups of replaced files. */
  var: "/var/lib/dgx-storage",
  /** Output of the detached runs (lib.sh's `run_detached`). */
  log: "/var/log/dgx-storage",
  /**
   * node_exporter's textfile directory, where every job writes its metrics (`--collector.textfile.directory`
   * in Debian's prometheus-node-exporter, /etc/default/prometheus-node-exporter). Not the project's
   * own: a script writes there only when the directory exists (the package is installed).
   */
  textfile: "/var/lib/prometheus/node-exporter",
} as const;

/** The shell variable each path travels in. */
export const HOST_PATH_VARIABLES = {
  DGX_ETC_DIR: HOST_PATHS.etc,
  DGX_LIB_DIR: HOST_PATHS.lib,
  DGX_VAR_DIR: HOST_PATHS.var,
  DGX_LOG_DIR: HOST_PATHS.log,
  DGX_TEXTFILE_DIR: HOST_PATHS.textfile,
} as const;

/** The paths as an environment, for a test or a bench that runs a script from the checkout. */
export function hostPathEnv(): Record<string, string> {
  return { ...HOST_PATH_VARIABLES };
}
