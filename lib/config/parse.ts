/**
 * Strict command-line configuration: `--key=value` (or `--key value`) for known keys only, each
 * value type-checked against its default, presets laid over the defaults, and `--help` generated
 * from the documented fields. Pure: it reads only the array it is given.
 *
 * Keys are camelCase in code and kebab-case on the command line (`dataDir` ↔ `--data-dir`).
 *
 * @example
 * ```ts
 * import { parseConfig } from "./parse.ts";
 * const spec = {
 *   description: "demo",
 *   defaults: { epochs: 3, lr: 0.1, name: "x" },
 *   docs: { epochs: "passes over the data", lr: "learning rate", name: "run name" },
 *   integers: ["epochs"] as const,
 *   presets: { smoke: { epochs: 1 } },
 * };
 * const r = parseConfig(["--preset=smoke", "--lr=0.5"], spec);
 * if ("help" in r) throw new Error("unexpected");
 * if (r.config.epochs !== 1 || r.config.lr !== 0.5) throw new Error("wrong");
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UserError } from "../util/errors.ts";

/** A configuration value: scalars and arrays of scalars. */
export type ConfigValue = number | string | boolean | number[] | string[];

/** Describes a program's configuration. */
export interface ConfigSpec<C extends Record<string, ConfigValue>> {
  /** program name and one-line purpose, first line of `--help` */
  description: string;
  /** how to run it (default `deno task <name>`) */
  usage?: string;
  /** the value of every key when nothing is given */
  defaults: C;
  /** one line per field: what it is, with its unit */
  docs: { [K in keyof C]: string };
  /** allowed values of string (or string-array) fields */
  choices?: { [K in keyof C]?: readonly string[] };
  /** numeric fields that must be integers */
  integers?: readonly (keyof C)[];
  /**
   * allowed range of numeric fields (each element of a number array); a field whose default is
   * an empty array is a number array when it has a range
   */
  ranges?: { [K in keyof C]?: Range };
  /** named partial configs laid over the defaults by `--preset=name` */
  presets?: Record<string, Partial<C>>;
  /** one line per preset for `--help` */
  presetDocs?: Record<string, string>;
}

/** An allowed numeric range; bounds are inclusive unless marked open. */
export interface Range {
  /** the smallest allowed value */
  min?: number;
  /** the largest allowed value */
  max?: number;
  /** the minimum itself is not allowed */
  minOpen?: boolean;
  /** the maximum itself is not allowed */
  maxOpen?: boolean;
}

/** The range as text, e.g. "≥ 1", "in (0, 1)". */
export function rangeText(r: Range): string {
  if (r.min !== undefined && r.max !== undefined) {
    return `in ${r.minOpen ? "(" : "["}${r.min}, ${r.max}${r.maxOpen ? ")" : "]"}`;
  }
  if (r.min !== undefined) return `${r.minOpen ? ">" : "≥"} ${r.min}`;
  if (r.max !== undefined) return `${r.maxOpen ? "<" : "≤"} ${r.max}`;
  return "any number";
}

function inRange(v: number, r: Range): boolean {
  if (r.min !== undefined && (r.minOpen ? !(v > r.min) : !(v >= r.min))) return false;
  if (r.max !== undefined && (r.maxOpen ? !(v < r.max) : !(v <= r.max))) return false;
  return true;
}

/**
 * Checks every ranged field of a configuration (defaults, presets and flags alike).
 * @throws ConfigError naming the flag, the value and the range
 */
export function checkRanges<C extends Record<string, ConfigValue>>(
  spec: ConfigSpec<C>,
  config: C,
): void {
  for (const [k, r] of Object.entries(spec.ranges ?? {}) as [string, Range][]) {
    const v = config[k];
    const values = Array.isArray(v) ? v : [v];
    for (const x of values) {
      if (typeof x === "number" && !inRange(x, r)) {
        throw new ConfigError(`--${kebab(k)}=${show(v as ConfigValue)}: must be ${rangeText(r)}`);
      }
    }
  }
}

/** `--help` was asked for (print `help`, exit 0), or the resolved configuration. */
export type ParseResult<C> = { help: string } | {
  config: C;
  preset: string | null;
  explicit: (keyof C)[];
};

/** A bad command line; `message` is one line meant for the user. */
export class ConfigError extends UserError {
  /** The error's name. */
  override name = "ConfigError";
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());

type Kind = "number" | "string" | "boolean" | "number[]" | "string[]";

/** The kind of a field; an empty array default is a number array when the field has a range. */
function fieldKind<C extends Record<string, ConfigValue>>(spec: ConfigSpec<C>, k: keyof C): Kind {
  const v = spec.defaults[k];
  if (Array.isArray(v) && v.length === 0 && spec.ranges?.[k]) return "number[]";
  return kindOf(v);
}

function kindOf(v: ConfigValue): Kind {
  if (Array.isArray(v)) return typeof v[0] === "number" ? "number[]" : "string[]";
  return typeof v as Kind;
}

function parseNumber(flag: string, raw: string, integer: boolean): number {
  const v = raw.trim() === "" ? NaN : Number(raw);
  if (!Number.isFinite(v)) throw new ConfigError(`${flag} expects a number, got '${raw}'`);
  if (integer && !Number.isInteger(v)) {
    throw new ConfigError(`${flag} expects an integer, got '${raw}'`);
  }
  return v;
}

function checkChoice(flag: string, v: string, choices: readonly string[] | undefined): void {
  if (choices && !choices.includes(v)) {
    throw new ConfigError(`${flag} must be one of ${choices.join(", ")} (got '${v}')`);
  }
}

function convert(
  flag: string,
  kind: Kind,
  raw: string | boolean,
  integer: boolean,
  choices?: readonly string[],
): ConfigValue {
  if (kind === "boolean") {
    if (typeof raw === "boolean") return raw;
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    throw new ConfigError(`${flag} expects true or false, got '${raw}'`);
  }
  const s = String(raw);
  if (kind === "number") return parseNumber(flag, s, integer);
  if (kind === "string") {
    checkChoice(flag, s, choices);
    return s;
  }
  const parts = s === "" ? [] : s.split(",").map((p) => p.trim());
  if (kind === "number[]") return parts.map((p) => parseNumber(flag, p, integer));
  parts.forEach((p) => checkChoice(flag, p, choices));
  return parts;
}

function validate<C extends Record<string, ConfigValue>>(
  spec: ConfigSpec<C>,
  partial: Partial<C>,
  where: string,
): void {
  for (const [k, v] of Object.entries(partial)) {
    if (!(k in spec.defaults)) throw new ConfigError(`${where} sets unknown field '${k}'`);
    const want = fieldKind(spec, k);
    const got = kindOf(v as ConfigValue);
    if (want !== got && !(Array.isArray(v) && (v as unknown[]).length === 0)) {
      throw new ConfigError(`${where} gives '${k}' a ${got}, expected ${want}`);
    }
  }
}

/**
 * Parses `args` against `spec`.
 *
 * @returns `{help}` when `--help` is present, else the configuration (defaults < preset < flags)
 * @throws ConfigError on an unknown flag, a value of the wrong type, outside its choices or its
 *   range, an unknown preset, or a positional argument
 */
export function parseConfig<C extends Record<string, ConfigValue>>(
  args: string[],
  spec: ConfigSpec<C>,
): ParseResult<C> {
  const keys = Object.keys(spec.defaults) as (keyof C & string)[];
  const byFlag = new Map(keys.map((k) => [kebab(k), k]));
  const options: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
    preset: { type: "string" },
  };
  for (const k of keys) {
    options[kebab(k)] = { type: fieldKind(spec, k) === "boolean" ? "boolean" : "string" };
  }
  // `--flag=true|false` for booleans, which parseArgs would reject.
  const normalised = args.map((a) => {
    const m = a.match(/^--([a-z0-9-]+)=(true|false)$/);
    if (m && options[m[1]]?.type === "boolean") {
      return m[2] === "true" ? `--${m[1]}` : `--no-${m[1]}`;
    }
    return a;
  });
  let parsed;
  try {
    parsed = parseArgs(
      {
        args: normalised,
        options,
        strict: true,
        allowPositionals: false,
        allowNegative: true,
      } as Parameters<typeof parseArgs>[0],
    );
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = msg.match(/Unknown option '([^']+)'/);
    if (unknown) {
      throw new ConfigError(
        `unknown option ${unknown[1]} (allowed: ${
          ["--preset", ...keys.map((k) => "--" + kebab(k))].join(", ")
        }; see --help)`,
      );
    }
    const noArg = msg.match(/Option '(--[a-z0-9-]+)' does not take an argument/);
    if (noArg) {
      const given = normalised.find((a) => a.startsWith(noArg[1] + "="))?.split("=").slice(1).join(
        "=",
      );
      throw new ConfigError(`${noArg[1]} expects true or false, got '${given ?? ""}'`);
    }
    const positional = msg.match(/Unexpected argument '([^']+)'/);
    if (positional) {
      throw new ConfigError(`unexpected argument '${positional[1]}': options are --key=value`);
    }
    throw new ConfigError(msg.split("\n")[0].replace(/\. To specify.*$/, ""));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) return { help: helpText(spec) };
  let config = { ...spec.defaults };
  let preset: string | null = null;
  if (typeof values.preset === "string") {
    preset = values.preset;
    const p = spec.presets?.[preset];
    if (!p) {
      const names = Object.keys(spec.presets ?? {});
      throw new ConfigError(
        `unknown preset '${preset}' (presets: ${names.length ? names.join(", ") : "none"})`,
      );
    }
    validate(spec, p, `preset '${preset}'`);
    config = { ...config, ...p };
  }
  const explicit: (keyof C)[] = [];
  for (const [flag, raw] of Object.entries(values)) {
    if (flag === "help" || flag === "preset" || raw === undefined) continue;
    const key = byFlag.get(flag)!;
    const integer = spec.integers?.includes(key) ?? false;
    (config as Record<string, ConfigValue>)[key] = convert(
      `--${flag}`,
      fieldKind(spec, key),
      raw,
      integer,
      spec.choices?.[key],
    );
    explicit.push(key);
  }
  checkRanges(spec, config);
  return { config, preset, explicit };
}

function show(v: ConfigValue): string {
  return Array.isArray(v) ? v.join(",") : String(v);
}

/** The `--help` text of a spec. */
export function helpText<C extends Record<string, ConfigValue>>(spec: ConfigSpec<C>): string {
  const keys = Object.keys(spec.defaults) as (keyof C & string)[];
  const lines = [
    spec.description,
    "",
    `Usage: ${spec.usage ?? "deno task <script> [--key=value ...]"}`,
    "",
  ];
  lines.push("Options:");
  const rows = keys.map((k) => {
    const kind = fieldKind(spec, k);
    const flag = `--${kebab(k)}${kind === "boolean" ? "[=false]" : `=${kind.toUpperCase()}`}`;
    const range = spec.ranges?.[k];
    const choices = spec.choices?.[k]
      ? ` (${spec.choices[k]!.join(" | ")})`
      : range
      ? ` (${rangeText(range)})`
      : "";
    return [flag, `${spec.docs[k]}${choices} [default: ${show(spec.defaults[k]) || '""'}]`];
  });
  rows.push(["--preset=NAME", "lay a preset over the defaults (below)"]);
  rows.push(["--help", "show this text"]);
  const width = Math.min(34, Math.max(...rows.map((r) => r[0].length)) + 2);
  for (const [f, d] of rows) lines.push(`  ${f.padEnd(width)}${d}`);
  const presets = Object.entries(spec.presets ?? {});
  if (presets.length) {
    lines.push("", "Presets:");
    for (const [name, p] of presets) {
      const doc = spec.presetDocs?.[name] ?? "";
      const body = Object.entries(p).map(([k, v]) => `${kebab(k)}=${show(v as ConfigValue)}`).join(
        " ",
      );
      lines.push(`  ${name.padEnd(10)}${doc ? doc + ": " : ""}${body}`);
    }
  }
  return lines.join("\n");
}
