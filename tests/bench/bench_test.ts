import assert from "node:assert/strict";
import { join } from "node:path";
import { benchSvm, drawSvmData, readSvmDump } from "../../scripts/bench/w5_svm.ts";

Deno.test("W5 data: balanced labels, each class scattered around its own centre", () => {
  const d = 16, classes = 4, n = 400;
  const data = drawSvmData({ n, d, classes, sigma: 0.5, seed: 3 });
  assert.strictEqual(data.x.length, n * d);
  assert.strictEqual(data.xTest.length, n * d);
  const counts = new Array(classes).fill(0);
  [...data.y, ...data.yTest].forEach((c) => counts[c]++);
  assert.deepStrictEqual(counts, new Array(classes).fill((2 * n) / classes));
  // the spread of a class around its mean is the noise σ, far below the N(0, 1) spread of centres
  const mean = new Float64Array(d);
  let m = 0;
  for (let i = 0; i < n; i++) {
    if (data.y[i] !== 0) continue;
    m++;
    for (let k = 0; k < d; k++) mean[k] += data.x[i * d + k];
  }
  let v = 0;
  for (let i = 0; i < n; i++) {
    if (data.y[i] !== 0) continue;
    for (let k = 0; k < d; k++) v += (data.x[i * d + k] - mean[k] / m) ** 2;
  }
  assert.ok(Math.abs(Math.sqrt(v / (m * d)) - 0.5) < 0.05);
});

Deno.test("W5 dump: the peer's raw files read back unchanged", async () => {
  const dir = await Deno.makeTempDir();
  const d = 3;
  const x = Float32Array.from([1, 2, 3, 4, 5, 6]), y = Uint8Array.from([0, 1]);
  await Deno.writeFile(join(dir, "X_train.f32"), new Uint8Array(x.buffer));
  await Deno.writeFile(join(dir, "y_train.u8"), y);
  await Deno.writeFile(join(dir, "X_test.f32"), new Uint8Array(x.buffer));
  await Deno.writeFile(join(dir, "y_test.u8"), Uint8Array.from([1, 0]));
  const data = await readSvmDump(dir, d, 2);
  assert.deepStrictEqual([...data.x], [...x]);
  assert.deepStrictEqual([...data.y], [0, 1]);
  assert.deepStrictEqual([...data.yTest], [1, 0]);
  await assert.rejects(() => readSvmDump(dir, 4, 2), /4-dimensional/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("W5 bench line: a converged fit that separates well-separated clusters", () => {
  const data = drawSvmData({ n: 300, d: 20, classes: 3, sigma: 0.3, seed: 1 });
  const line = benchSvm({ backend: "typescript", threads: 1, quick: true }, data);
  assert.strictEqual(line.workload, "W5");
  assert.strictEqual(line.converged, true);
  assert.strictEqual(line.accuracy, 1);
  assert.ok((line.test_accuracy as number) > 0.99);
  assert.ok((line.fit_s as number) > 0);
});

Deno.test({
  name: "deno task bench --quick writes one JSON line per workload result",
  sanitizeResources: false,
  fn: async () => {
    const out = join(await Deno.makeTempDir(), "bench.jsonl");
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "scripts/bench.ts",
        "--quick",
        "--workload=W2,W4,W5",
        "--backends=native",
        "--threads=1",
        "--model=mnist_cnn",
        `--out=${out}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.strictEqual(code, 0, new TextDecoder().decode(stderr));
    const lines = (await Deno.readTextFile(out)).trim().split("\n").map((l) => JSON.parse(l));
    // W4 on the native backend: each block fused (variant "", the line compared with PyTorch)
    // and with stock ops
    assert.deepStrictEqual(lines.map((l) => `${l.workload}/${l.model}/${l.backend}/${l.variant}`), [
      "W2/mnist_cnn/native/",
      "W4/gunn_block/native/",
      "W4/gunn_block/native/stock_ops",
      "W4/sunn_reference/native/",
      "W4/sunn_reference/native/stock_ops",
      "W5/svm_2k_512/typescript/ovr_dcd",
    ]);
    assert.ok(lines[0].items_per_s > 0);
    // both W4 blocks: 4·(3·3·64·16) + 8·16 and 3·3·64·64 + 2·64 parameters
    assert.deepStrictEqual(lines.slice(1, 5).map((l) => l.params), [36992, 36992, 36992, 36992]);
    assert.ok(lines[1].items_per_s > 0 && lines[3].fwd_only_items_per_s > 0);
    assert.strictEqual(lines[5].accuracy, 1);
  },
});
