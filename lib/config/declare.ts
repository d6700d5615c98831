/**
 * A configuration declared once: each key's default, one-line doc, and (optionally) its allowed
 * values, numeric range and integrality, in one table — from which the defaults, the `--help`
 * docs, the validation tables of {@link ConfigSpec} and the keys' literal types are derived.
 *
 * @example
 * ```ts
 * import { declareConfig, key } from "./declare.ts";
 * import { parseConfig } from "./parse.ts";
 * const c = declareConfig({
 *   epochs: key(3, "passes over the data", { int: true, min: 1 }),
 *   optimizer: key("sgd", "the optimiser", { choices: ["sgd", "adam"] as const }),
 * });
 * const r = parseConfig(["--epochs=5"], { description: "demo", ...c });
 * if ("help" in r || r.config.epochs !== 5 || r.config.optimizer !== "sgd") throw new Error("wrong");
 * // the literal type comes from the choices: "sgd" | "adam"
 * const o: "sgd" | "adam" = c.defaults.optimizer;
 * if (o !== "sgd") throw new Error("wrong");
 * ```
 *
 * @module
 */

import type { ConfigSpec, ConfigValue, Range } from "./parse.ts";

/** A key whose value is free within its type (and range). */
export interface PlainKey<T extends ConfigValue> {
  default: T;
  doc: string;
  choices?: undefined;
  range?: Range;
  integer?: boolean;
}

/** A key whose value (each element, for an array) is one of `choices`. */
export interface ChoiceKey<T extends ConfigValue, U extends string> {
  default: T;
  doc: string;
  choices: readonly U[];
  range?: Range;
  integer?: boolean;
}

/** One declared key. */
export type KeyDecl = PlainKey<ConfigValue> | ChoiceKey<ConfigValue, string>;

/** What {@link key} takes besides the default and the doc. */
export interface KeyOptions extends Range {
  /** the value (each element of a number array) must be an integer */
  int?: boolean;
}

/**
 * Declares one key. With `choices`, the key's type is their union (an array of it for an array
 * default); otherwise the default's type, widened (`3` → number).
 */
export function key<T extends ConfigValue, U extends string>(
  defaultValue: T,
  doc: string,
  o: KeyOptions & { choices: readonly U[] },
): ChoiceKey<T, U>;
export function key<T extends ConfigValue>(
  defaultValue: T,
  doc: string,
  o?: KeyOptions,
): PlainKey<T>;
export function key(
  defaultValue: ConfigValue,
  doc: string,
  o: KeyOptions & { choices?: readonly string[] } = {},
): KeyDecl {
  const { choices, int, ...range } = o;
  const hasRange = Object.values(range).some((v) => v !== undefined);
  return {
    default: defaultValue,
    doc,
    ...(choices ? { choices } : {}),
    ...(hasRange ? { range } : {}),
    ...(int ? { integer: true } : {}),
  } as KeyDecl;
}

type Widen<T> = T extends string ? string
  : T extends number ? number
  : T extends boolean ? boolean
  : T extends string[] ? string[]
  : T extends number[] ? number[]
  : T;

/** The value type of a declared key. */
export type ValueOf<D> = D extends ChoiceKey<infer T, infer U>
  ? (T extends readonly unknown[] ? U[] : U)
  : D extends PlainKey<infer T> ? Widen<T>
  : never;

/** The configuration type of a table of declared keys. */
export type ConfigOf<D extends Record<string, KeyDecl>> = {
  -readonly [K in keyof D]: ValueOf<D[K]>;
};

/** The tables of a {@link ConfigSpec}, derived from keys declared once. */
export function declareConfig<D extends Record<string, KeyDecl>>(
  keys: D,
): Required<
  Pick<ConfigSpec<ConfigOf<D>>, "defaults" | "docs" | "choices" | "ranges" | "integers">
> {
  const entries = Object.entries(keys) as [keyof D & string, KeyDecl][];
  const pick = <V>(f: (d: KeyDecl) => V | undefined) =>
    Object.fromEntries(
      entries.flatMap(([k, d]) => (f(d) === undefined ? [] : [[k, f(d)]])),
    );
  return {
    defaults: pick((d) => d.default) as ConfigOf<D>,
    docs: pick((d) => d.doc) as { [K in keyof D]: string },
    choices: pick((d) => d.choices) as { [K in keyof D]?: readonly string[] },
    ranges: pick((d) => d.range) as { [K in keyof D]?: Range },
    integers: entries.filter(([, d]) => d.integer).map(([k]) => k),
  };
}
