/**
 * Bad input as a user types it: each case runs a script as a subprocess and must exit 2 with a
 * single `error: …` line on stderr (no stack frame) that names the problem, and leave no run
 * folder behind.
 */

import assert from "node:assert";
import { join } from "node:path";

interface Case {
  script: string;
  args: string[];
  message: RegExp;
}

const CASES: Case[] = [
  { script: "gradnet", args: ["--epochs=-1"], message: /--epochs=-1: must be ≥ 1/ },
  { script: "gradnet", args: ["--epochs=0"], message: /--epochs=0: must be ≥ 1/ },
  { script: "gradnet", args: ["--lr=-1"], message: /--lr=-1: must be > 0/ },
  { script: "gradnet", args: ["--batch=0"], message: /--batch=0: must be ≥ 1/ },
  { script: "gradnet", args: ["--h=0"], message: /--h=0: must be ≥ 1/ },
  { script: "gradnet", args: ["--structure=abc"], message: /--structure=abc: .*5\+25\+10/ },
  {
    script: "gradnet",
    args: ["--selection-percent=200"],
    message: /--selection-percent=200: must be in \(0, 100\]/,
  },
  { script: "gradnet", args: ["--targets=0.5,1.2"], message: /--targets=0.5,1.2: must be in/ },
  { script: "gradnet", args: ["--threads=-1"], message: /--threads=-1: must be in \[0, 1024\]/ },
  { script: "gradnet", args: ["--out="], message: /--out is empty/ },
  { script: "gunn", args: ["--epochs=0"], message: /--epochs=0: must be ≥ 1/ },
  { script: "gunn", args: ["--train-images=-5"], message: /--train-images=-5: must be ≥ 0/ },
  { script: "supernet", args: ["--steps=-1"], message: /--steps=-1: must be ≥ 1/ },
  {
    script: "supernet",
    args: ["--checkpoint-every=0"],
    message: /--checkpoint-every=0: must be ≥ 1/,
  },
  { script: "lastlayer", args: ["--svm-c=0"], message: /--svm-c=0: must be > 0/ },
  {
    script: "gunn",
    args: ["--batch=100000"],
    message: /--batch=100000: more than the 96 training/,
  },
  {
    script: "supernet",
    args: ["--batch=100000"],
    message: /--batch=100000: must be in \[1, 4096\]/,
  },
  { script: "gradnet", args: ["--val-images=0"], message: /--val-images=0: must be ≥ 1/ },
];

async function run(script: string, args: string[]) {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `scripts/${script}.ts`, "--preset=smoke", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: r.code, stderr: new TextDecoder().decode(r.stderr) };
}

/** One `error: …` line, the last one printed, matching `message`; no stack frame anywhere. */
function assertOneLine(stderr: string, message: RegExp) {
  const lines = stderr.trim().split("\n");
  const errors = lines.filter((l) => l.startsWith("error: "));
  assert.strictEqual(errors.length, 1, `expected one error line, got:\n${stderr}`);
  assert.strictEqual(errors[0], lines.at(-1), "the error is not the last line");
  assert.match(errors[0], message);
  assert.ok(!/\n\s+at /.test(stderr), "stack frames printed");
}

for (const c of CASES) {
  Deno.test(`bad input: ${c.script} ${c.args.join(" ")} → exit 2, one line, no folder`, async () => {
    const out = await Deno.makeTempDir();
    const args = c.args.some((a) => a.startsWith("--out=")) ? c.args : [...c.args, `--out=${out}`];
    const r = await run(c.script, args);
    assert.strictEqual(r.code, 2, r.stderr);
    assertOneLine(r.stderr, c.message);
    assert.deepStrictEqual([...Deno.readDirSync(out)], [], "something was written");
    await Deno.remove(out, { recursive: true });
  });
}

Deno.test("bad input: --resume refuses another script's folder and flags it would drop", async () => {
  const out = await Deno.makeTempDir();
  const folder = join(out, "gunn", "r1");
  await Deno.mkdir(folder, { recursive: true });
  await Deno.writeTextFile(join(folder, "config.json"), JSON.stringify({ paper: "gunn" }));
  let r = await run("gradnet", [`--resume=${folder}`]);
  assert.strictEqual(r.code, 2, r.stderr);
  // "--preset=smoke" itself is refused next to --resume: the run keeps its own configuration
  assertOneLine(r.stderr, /--resume continues a run with its own configuration; drop --preset/);
  r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "scripts/gradnet.ts", `--resume=${folder}`],
    stderr: "piped",
    stdout: "piped",
  }).output().then((o) => ({ code: o.code, stderr: new TextDecoder().decode(o.stderr) }));
  assert.strictEqual(r.code, 2, r.stderr);
  assertOneLine(r.stderr, /a gunn run folder, not a gradnet one/);
  // the folder is untouched
  assert.deepStrictEqual([...Deno.readDirSync(folder)].map((e) => e.name), ["config.json"]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("bad input: a failed start (dataset not found) leaves no run folder", async () => {
  const out = await Deno.makeTempDir();
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "scripts/gradnet.ts",
      "--dataset=cifar10",
      `--data-dir=${join(out, "nowhere")}`,
      `--out=${out}`,
    ],
    stdout: "piped",
    stderr: "piped",
    // the download it then tries fails at once without a network; never hang the suite on it
    signal: AbortSignal.timeout(120_000),
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.strictEqual(r.code, 2, stderr);
  assert.match(stderr, /error: CIFAR-10 not found/);
  const left: string[] = [];
  for (const e of Deno.readDirSync(out)) {
    if (e.isDirectory) { for (const f of Deno.readDirSync(join(out, e.name))) left.push(f.name); }
  }
  assert.deepStrictEqual(left, [], "a run folder was left behind");
  await Deno.remove(out, { recursive: true });
});

Deno.test("bad input: --out naming a file, /proc or /sys → one line naming the path", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "a-file");
  await Deno.writeTextFile(file, "x");
  for (const out of [file, "/proc/gradlab-test", "/sys/gradlab-test"]) {
    const r = await run("gradnet", [`--out=${out}`]);
    assert.strictEqual(r.code, 2, r.stderr);
    assertOneLine(r.stderr, new RegExp(`mkdir '${out}/gradnet/`));
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("bad input: --batch larger than the GradNet half is refused before any training", async () => {
  const out = await Deno.makeTempDir();
  const r = await run("gradnet", ["--batch=5000", `--out=${out}`]);
  assert.strictEqual(r.code, 2, r.stderr);
  assertOneLine(r.stderr, /--batch=5000: more than the 750 GradNet training images/);
  assert.ok(!r.stderr.includes("base net epoch"), "base training ran first");
  const left = [...Deno.readDirSync(out)].flatMap((e) => [...Deno.readDirSync(join(out, e.name))]);
  assert.deepStrictEqual(left, [], "a run folder was left behind");
  await Deno.remove(out, { recursive: true });
});

Deno.test("bad input: a checkpoint of random bytes is named; a directory in its place too", async () => {
  const out = await Deno.makeTempDir();
  // an interrupted smoke run: its base checkpoint exists, the run is not complete
  const folder = join(out, "gradnet", "r");
  await Deno.mkdir(folder, { recursive: true });
  const { DEFAULTS, GRADNET_SPEC } = await import("../../scripts/gradnet.ts");
  await Deno.writeTextFile(
    join(folder, "config.json"),
    JSON.stringify({ paper: "gradnet", ...DEFAULTS, ...GRADNET_SPEC.presets.smoke, out }),
  );
  const ck = join(folder, "base-checkpoint.bin");
  await Deno.writeFile(ck, crypto.getRandomValues(new Uint8Array(4096)));
  const resume = () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "scripts/gradnet.ts", `--resume=${folder}`],
      stdout: "piped",
      stderr: "piped",
    }).output().then((o) => ({ code: o.code, stderr: new TextDecoder().decode(o.stderr) }));
  // progress lines come first here (the data loads); the failure is one error line, no stack
  const oneError = (stderr: string, message: RegExp) => {
    const errors = stderr.split("\n").filter((l) => l.startsWith("error: "));
    assert.strictEqual(errors.length, 1, stderr);
    assert.match(errors[0], message);
    assert.ok(!/\n\s+at /.test(stderr), "stack frames printed");
  };
  let r = await resume();
  assert.strictEqual(r.code, 2, r.stderr);
  oneError(r.stderr, new RegExp(`${ck}: not a gradlab bundle`));
  await Deno.remove(ck);
  await Deno.mkdir(ck);
  r = await resume();
  assert.strictEqual(r.code, 2, r.stderr);
  oneError(r.stderr, new RegExp(`${ck}: Is a directory`));
  await Deno.remove(out, { recursive: true });
});

Deno.test("a full disk is a one-line failure naming the cause, not a stack trace", async () => {
  const { ioFailure } = await import("../../lib/util/errors.ts");
  // /dev/full answers every write with ENOSPC, as a full disk does
  const err = await Deno.writeTextFile("/dev/full", "x".repeat(4096)).then(() => null, (e) => e);
  assert.ok(err, "writing /dev/full did not fail");
  const line = ioFailure(err);
  assert.ok(line && !line.includes("\n"), String(line));
  assert.match(line!, /No space left on device/);
  assert.strictEqual(ioFailure(new TypeError("a bug")), null, "a bug must keep its stack");
});

Deno.test("killing the `deno task` wrapper (kill -9) stops the script instead of orphaning it", async () => {
  const out = await Deno.makeTempDir();
  const pidFile = join(out, "pid"), log = join(out, "log");
  const wrapper = new Deno.Command("bash", {
    args: [
      "-c",
      `"${Deno.execPath()}" run -A scripts/gradnet.ts --preset=smoke --epochs=100000 --out=${out} ` +
      `>/dev/null 2>${log} & echo $! > ${pidFile}; wait`,
    ],
  }).spawn();
  // wait until the script runs (its signal handling is armed right after "run folder:")
  let pid = 0, started = false;
  for (let i = 0; i < 600 && !started; i++) {
    await new Promise((r) => setTimeout(r, 100));
    pid ||= Number((await Deno.readTextFile(pidFile).catch(() => "")).trim());
    started = (await Deno.readTextFile(log).catch(() => "")).includes("base network");
  }
  assert.ok(pid > 0 && started, "the script did not start");
  wrapper.kill("SIGKILL");
  await wrapper.status;
  // running, as /proc tells it (an exited child may linger as a zombie until it is reaped)
  const alive = () => {
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      return !/^\d+ \(.*\) Z /.test(stat);
    } catch {
      return false;
    }
  };
  let gone = false;
  for (let i = 0; i < 300 && !gone; i++) {
    await new Promise((r) => setTimeout(r, 100));
    gone = !alive();
  }
  if (!gone) Deno.kill(pid, "SIGKILL");
  assert.ok(gone, "the script kept running without its parent");
  await Deno.remove(out, { recursive: true });
});
