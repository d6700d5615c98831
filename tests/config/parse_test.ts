import assert from "node:assert";
import { ConfigError, helpText, parseConfig } from "../../lib/config/parse.ts";

const spec = {
  description: "demo — a test program",
  defaults: { epochs: 3, lr: 0.1, name: "run", fast: false, targets: [0.5, 0.6], backend: "auto" },
  docs: {
    epochs: "passes",
    lr: "learning rate",
    name: "run name",
    fast: "go fast",
    targets: "ladder targets",
    backend: "backend",
  },
  choices: { backend: ["auto", "cpu"] },
  integers: ["epochs"] as const,
  presets: { smoke: { epochs: 1, fast: true } },
};

function config(args: string[]) {
  const r = parseConfig(args, spec);
  if ("help" in r) throw new Error("unexpected help");
  return r;
}

Deno.test("parseConfig() gives the defaults when no flag is set", () => {
  assert.deepStrictEqual(config([]).config, spec.defaults);
});

Deno.test("parseConfig() converts each value to its default's type", () => {
  const c =
    config(["--epochs=7", "--lr", "0.5", "--name=x", "--fast", "--targets=0.1,0.2,0.3"]).config;
  assert.deepStrictEqual(c, {
    ...spec.defaults,
    epochs: 7,
    lr: 0.5,
    name: "x",
    fast: true,
    targets: [0.1, 0.2, 0.3],
  });
  assert.strictEqual(config(["--fast=false"]).config.fast, false);
  assert.strictEqual(config(["--no-fast"]).config.fast, false);
});

Deno.test("parseConfig() lays presets over defaults, and flags over presets", () => {
  const r = config(["--preset=smoke", "--epochs=2"]);
  assert.strictEqual(r.preset, "smoke");
  assert.strictEqual(r.config.epochs, 2);
  assert.strictEqual(r.config.fast, true);
  assert.deepStrictEqual(r.explicit, ["epochs"]);
});

Deno.test("parseConfig() turns --help into generated help text", () => {
  const r = parseConfig(["--help"], spec);
  assert.ok("help" in r);
  const text = helpText(spec);
  for (
    const s of ["--epochs=NUMBER", "learning rate", "[default: 0.5,0.6]", "smoke", "(auto | cpu)"]
  ) {
    assert.ok(text.includes(s), `help lacks ${s}`);
  }
});

const BAD: [string[], RegExp][] = [
  [["--epoch=3"], /unknown option --epoch .*allowed: .*--epochs/],
  [["--epochs=abc"], /--epochs expects a number, got 'abc'/],
  [["--epochs=1.5"], /--epochs expects an integer, got '1.5'/],
  [["--lr="], /--lr expects a number/],
  [["--fast=maybe"], /--fast expects true or false/],
  [["--backend=gpu"], /--backend must be one of auto, cpu \(got 'gpu'\)/],
  [["--preset=huge"], /unknown preset 'huge' \(presets: smoke\)/],
  [["stray"], /unexpected argument 'stray'/],
  [["--targets=0.1,x"], /--targets expects a number, got 'x'/],
];

for (const [args, re] of BAD) {
  Deno.test(`parseConfig() rejects ${args.join(" ")} with a one-line error`, () => {
    assert.throws(() => parseConfig(args, spec), (e: Error) => {
      assert.ok(e instanceof ConfigError, `not a ConfigError: ${e}`);
      assert.match(e.message, re);
      assert.ok(!e.message.includes("\n"), "multi-line message");
      return true;
    });
  });
}

Deno.test("ranges: values outside a field's range are refused in one line naming flag, value and range", () => {
  const spec = {
    description: "demo",
    defaults: { epochs: 3, lr: 0.1, targets: [] as number[] },
    docs: { epochs: "passes", lr: "learning rate", targets: "ladder" },
    integers: ["epochs"] as const,
    ranges: {
      epochs: { min: 1 },
      lr: { min: 0, minOpen: true },
      targets: { min: 0, max: 1, minOpen: true, maxOpen: true },
    },
    presets: { broken: { epochs: 0 } },
  };
  const ok = parseConfig(["--epochs=1", "--lr=1e-9", "--targets=0.5,0.99"], spec);
  if ("help" in ok) throw new Error("unexpected help");
  assert.deepStrictEqual(ok.config.targets, [0.5, 0.99]); // numbers, not strings
  const refused: [string[], RegExp][] = [
    [["--epochs=0"], /^--epochs=0: must be ≥ 1$/],
    [["--epochs=-1"], /^--epochs=-1: must be ≥ 1$/],
    [["--lr=0"], /^--lr=0: must be > 0$/],
    [["--targets=0.5,1"], /^--targets=0.5,1: must be in \(0, 1\)$/],
    [["--preset=broken"], /^--epochs=0: must be ≥ 1$/], // presets are checked too
  ];
  for (const [args, msg] of refused) {
    assert.throws(() => parseConfig(args, spec), (e: Error) => {
      assert.ok(e instanceof ConfigError, `${args}: ${e}`);
      assert.match(e.message, msg);
      return true;
    });
  }
});
