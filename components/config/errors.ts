/**
 * The text of the door's one error: every problem on its own line, with the key path, the bad
 * value and what was expected, under the stack file's name.
 */
import type { z } from "zod";

/** Thrown by the door: one error listing every problem. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`${source}: invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

/** A value as a problem line shows it: JSON, cut at 80 characters; "(missing)" for none. */
export function show(value: unknown): string {
  if (value === undefined) return "(missing)";
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function getAt(obj: unknown, keyPath: readonly PropertyKey[]): unknown {
  let cur: unknown = obj;
  for (const k of keyPath) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

/** The problem lines of one zod issue over `values` (the input that was parsed). */
export function describeIssue(issue: z.core.$ZodIssue, values: unknown): string[] {
  const keyPath = issue.path.map(String).join(".");
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((k) => {
      const full = keyPath ? `${keyPath}.${k}` : k;
      return `${full}: unknown key (value ${show(getAt(values, [...issue.path, k]))}); check the spelling`;
    });
  }
  if (issue.code === "invalid_key") {
    const key = String(issue.path[issue.path.length - 1]);
    return [`${keyPath}: the key ${JSON.stringify(key)} is invalid; expected ${issue.issues.map((i) => i.message).join("; ")}`];
  }
  const value = "input" in issue ? issue.input : getAt(values, issue.path);
  let expected: string;
  if (issue.code === "invalid_value") expected = `one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
  else if (issue.code === "invalid_type" && issue.message.startsWith("Invalid input")) expected = `a ${issue.expected}`;
  else expected = issue.message;
  return [`${keyPath === "" ? "(root)" : keyPath}: ${show(value)} is invalid; expected ${expected}`];
}
