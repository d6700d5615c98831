/**
 * A small seeded PRNG (sfc32, seeded through splitmix32) whose whole state can be saved and
 * restored, so that a resumed run continues the exact random stream of the interrupted one.
 *
 * @module
 */

/** Saved state of an {@link Rng}. */
export interface RngState {
  /** the xoshiro128** state */
  s: [number, number, number, number];
  /** the spare normal deviate of the Box–Muller pair, if one is pending */
  spare: number | null;
}

function splitmix32(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Seeded random numbers: uniform, integers, normals, permutations. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  /** @param seed any integer (or float: its bits are mixed) */
  /** A generator seeded with `seed` (any integer). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new RangeError(`Rng seed must be finite, got ${seed}`);
    const mix = splitmix32(Math.floor(seed) ^ Math.floor(seed / 2 ** 32));
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** A new generator whose stream is independent of this one's (derived from a label). */
  fork(label: number): Rng {
    return new Rng((this.nextUint32() ^ Math.imul(label + 1, 0x9e3779b9)) >>> 0);
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  float(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.float();
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) {
      throw new RangeError(`Rng.int needs an integer n in [1, 2^32], got ${n}`);
    }
    const limit = 4294967296 - (4294967296 % n);
    let v: number;
    do v = this.nextUint32(); while (v >= limit);
    return v % n;
  }

  /** Standard normal deviate (Box–Muller). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.float();
    const v = this.float();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Fisher–Yates shuffle in place; returns the array. */
  shuffle<T>(a: T[] | Int32Array | Uint32Array): typeof a {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }

  /** A random permutation of 0..n−1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p) as Int32Array;
  }

  /** Float32Array of standard normals (times `scale`). */
  normals(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.normal() * scale;
    return out;
  }

  /** Float32Array of uniforms in [lo, hi). */
  uniforms(n: number, lo = 0, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  /** The full state, for checkpoints. */
  getState(): RngState {
    return { s: [this.a, this.b, this.c, this.d], spare: this.spare };
  }

  /** Restores a state from {@link getState}. */
  setState(state: RngState): void {
    [this.a, this.b, this.c, this.d] = state.s.map((v) => v >>> 0) as RngState["s"];
    this.spare = state.spare;
  }
}

/**
 * The seed to hand a TF.js initializer or random op for gradlab seed `seed`. TF.js treats a
 * falsy seed (0) as "no seed" and draws from `Math.random`, so seed 0 would silently make a run
 * irreproducible; this maps every integer to a distinct non-zero one.
 */
export function tfSeed(seed: number): number {
  return 2 * seed + 1;
}

/**
 * A 32-bit hash of integers (FNV-1a over their 32-bit words), for seeds derived from several
 * counters (seed, epoch, chunk, …).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { mix } from "./rng.ts";
 * assert.strictEqual(mix(1, 2), mix(1, 2));
 * assert.notStrictEqual(mix(1, 2), mix(2, 1));
 * ```
 */
export function mix(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193);
    h = Math.imul(h ^ Math.floor(x / 4294967296), 0x01000193);
  }
  return h >>> 0;
}
