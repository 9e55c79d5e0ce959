/**
 * `npm run docs:config`: writes docs/config.md, the config reference, from the zod schema of
 * the config door: each field's `description` and `title` (zod `.meta`), its default (zod
 * `.default`) and whether it is required, read through `z.toJSONSchema` (zod 4, "JSON Schema"
 * docs: `io: "input"` describes what a stack file may hold, defaults included). test/config/docs.test.ts
 * checks that the committed file is what this writes, so the reference cannot drift from the
 * schema. `--check` exits 1 instead of writing when the file differs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { z } from "zod";
import { hostConfigSchema, PROJECT, SECRET_DOCS, SECRET_KEYS } from "../components/config";

export const CONFIG_DOC = path.resolve(__dirname, "..", "docs", "config.md");

/** The part of a JSON Schema node this generator reads. */
interface Node {
  readonly type?: string | readonly string[];
  readonly title?: string;
  readonly description?: string;
  readonly defaultText?: string;
  readonly default?: unknown;
  readonly enum?: readonly unknown[];
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly properties?: Readonly<Record<string, Node>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: Node | boolean;
  readonly items?: Node;
  readonly anyOf?: readonly Node[];
}

interface Row {
  readonly key: string;
  readonly type: string;
  readonly default: string;
  readonly meaning: string;
}

const code = (s: string) => `\`${s}\``;
const cell = (s: string) => s.replace(/\|/g, "\\|");

/** A default as a stack file would spell it: plain scalars, JSON for lists and maps. */
function showDefault(v: unknown): string {
  if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return code(String(v));
  return code(JSON.stringify(v).replace(/,/g, ", ").replace(/:/g, ": "));
}

/** Bounds as `1..600`, `≥ 1` or `> 0`; zod's `.int()` adds the safe-integer bounds, which say nothing here. */
function range(n: Node): string {
  const max = n.maximum !== undefined && n.maximum < Number.MAX_SAFE_INTEGER ? n.maximum : undefined;
  const min = n.minimum !== undefined && n.minimum > Number.MIN_SAFE_INTEGER ? n.minimum : undefined;
  if (min !== undefined && max !== undefined) return ` ${min}..${max}`;
  if (max !== undefined) return ` ≤ ${max}`;
  if (min !== undefined) return ` ≥ ${min}`;
  return n.exclusiveMinimum !== undefined ? ` > ${n.exclusiveMinimum}` : "";
}

function typeOf(n: Node): string {
  if (n.title) return n.title;
  if (n.enum) return n.enum.map(String).join(", ");
  if (n.anyOf) return n.anyOf.map(typeOf).join(" or ");
  const t = typeof n.type === "string" ? n.type : n.type?.join(" or ");
  if (t === "array") return `list of ${n.items ? typeOf(n.items) : "values"}`;
  if (t === "object") return n.properties ? `{${Object.keys(n.properties).join(", ")}}` : "map";
  if (t === "integer") return `whole number${range(n)}`;
  if (t === "number") return `number${range(n)}`;
  return t ?? "any";
}

/** Whether any field below `n` carries a description: then its fields get rows of their own. */
function documentedBelow(n: Node): boolean {
  const children = [
    ...Object.values(n.properties ?? {}),
    ...(n.items ? [n.items] : []),
    ...(typeof n.additionalProperties === "object" ? [n.additionalProperties] : []),
  ];
  return children.some((c) => c.description !== undefined || documentedBelow(c));
}

/**
 * The rows of a node and of its fields, depth first. `within` is the nearest optional section
 * above (a required field of an optional section is "required with" it).
 */
function rows(key: string, n: Node, required: boolean, within: string | undefined): Row[] {
  const expand = documentedBelow(n);
  const dflt =
    "default" in n ? showDefault(n.default) : n.defaultText ? n.defaultText : required ? (within ? `required with ${code(within)}` : "required") : "none";
  const kind = n.properties ? "section" : n.items ? "list" : "map";
  const own: Row[] =
    n.description !== undefined || !expand ? [{ key: code(key), type: expand ? kind : typeOf(n), default: dflt, meaning: n.description ?? "" }] : [];
  if (!expand) return own;
  if (n.properties) {
    const inner = required ? within : key;
    return [...own, ...Object.entries(n.properties).flatMap(([k, c]) => rows(`${key}.${k}`, c, n.required?.includes(k) ?? false, inner))];
  }
  // the fields of a list's entry or a map's value are required in each entry
  if (n.items) return [...own, ...rows(`${key}[]`, n.items, true, `${key}[]`)];
  if (typeof n.additionalProperties === "object") return [...own, ...rows(`${key}.<name>`, n.additionalProperties, true, `${key}.<name>`)];
  return own;
}

/** The whole reference, as docs/config.md holds it. */
export function renderConfigReference(): string {
  const schema = z.toJSONSchema(hostConfigSchema, { io: "input", unrepresentable: "any" }) as Node;
  const fields = Object.entries(schema.properties ?? {}).flatMap(([k, n]) => rows(k, n, schema.required?.includes(k) ?? false, undefined));
  const secrets: Row[] = SECRET_KEYS.map((k) => ({
    key: code(k),
    type: SECRET_DOCS[k].type,
    default: SECRET_DOCS[k].default,
    meaning: SECRET_DOCS[k].description,
  }));
  const table = (rs: readonly Row[]) =>
    [
      "| key | type | default | meaning |",
      "|---|---|---|---|",
      ...rs.map((r) => `| ${r.key} | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.meaning)} |`),
    ].join("\n");
  return [
    "<!-- Generated by `npm run docs:config` from the zod schema in components/config/ (field docs in .meta). Do not edit: change the schema and run it again. -->",
    "",
    "# Configuration reference",
    "",
    `Stack config lives in \`Pulumi.<stack>.yaml\` under the \`${PROJECT}:\` namespace. It is validated`,
    "by one zod schema (`components/config/`) before any resource is registered; an invalid file",
    "fails with one error that lists every problem: the file, the key path, the bad value and what is",
    'expected. Unknown keys (typos) are errors. "required with `x`": required when the optional section',
    "`x` is present, or in each entry of the list `x[]` or map `x.<name>`.",
    "",
    table(fields),
    "",
    "## Secrets",
    "",
    "Set with `pulumi config set --secret`, never inline: the door refuses a secret key in plaintext,",
    "and its value never appears in an error.",
    "",
    table(secrets),
    "",
  ].join("\n");
}

if (require.main === module) {
  const text = renderConfigReference();
  const current = fs.existsSync(CONFIG_DOC) ? fs.readFileSync(CONFIG_DOC, "utf8") : "";
  if (process.argv.includes("--check")) {
    if (current !== text) {
      console.error(`docs:config: ${path.relative(process.cwd(), CONFIG_DOC)} differs from the schema; run npm run docs:config`);
      process.exit(1);
    }
  } else if (current !== text) {
    fs.writeFileSync(CONFIG_DOC, text);
    console.log(`docs:config: wrote ${path.relative(process.cwd(), CONFIG_DOC)}`);
  } else {
    console.log(`docs:config: ${path.relative(process.cwd(), CONFIG_DOC)} is up to date`);
  }
}
