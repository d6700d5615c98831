/**
 * A naive float64 GUNN layer in plain arithmetic, for tests: every step rebuilds the state by
 * concatenating channel arrays, convolutions are explicit loops, batch norm uses the batch's
 * statistics (training mode, biased variance). Independent of TF.js.
 */

/** [N, H, W, C] in float64, row-major. */
export interface Volume {
  data: Float64Array;
  n: number;
  h: number;
  w: number;
  c: number;
}

/** Plain-array weights of one unit (kernels [k, k, in, out]; norms γ, β). */
export interface RefUnit {
  conv1: Float64Array;
  g1: Float64Array;
  b1: Float64Array;
  conv2: Float64Array;
  g2: Float64Array;
  b2: Float64Array;
  conv3: Float64Array;
  g3: Float64Array;
  b3: Float64Array;
  proj?: Float64Array;
  gp?: Float64Array;
  bp?: Float64Array;
}

function conv(x: Volume, k: Float64Array, size: number, cout: number): Volume {
  const out = new Float64Array(x.n * x.h * x.w * cout);
  const pad = (size - 1) / 2;
  for (let b = 0; b < x.n; b++) {
    for (let i = 0; i < x.h; i++) {
      for (let j = 0; j < x.w; j++) {
        for (let co = 0; co < cout; co++) {
          let s = 0;
          for (let di = 0; di < size; di++) {
            for (let dj = 0; dj < size; dj++) {
              const y = i + di - pad, z = j + dj - pad;
              if (y < 0 || y >= x.h || z < 0 || z >= x.w) continue;
              for (let ci = 0; ci < x.c; ci++) {
                s += x.data[((b * x.h + y) * x.w + z) * x.c + ci] *
                  k[((di * size + dj) * x.c + ci) * cout + co];
              }
            }
          }
          out[((b * x.h + i) * x.w + j) * cout + co] = s;
        }
      }
    }
  }
  return { ...x, data: out, c: cout };
}

function norm(x: Volume, g: Float64Array, beta: Float64Array, eps: number): Volume {
  const m = x.n * x.h * x.w, out = new Float64Array(x.data.length);
  for (let c = 0; c < x.c; c++) {
    let mean = 0, v = 0;
    for (let p = 0; p < m; p++) mean += x.data[p * x.c + c];
    mean /= m;
    for (let p = 0; p < m; p++) v += (x.data[p * x.c + c] - mean) ** 2;
    v /= m;
    for (let p = 0; p < m; p++) {
      out[p * x.c + c] = ((x.data[p * x.c + c] - mean) / Math.sqrt(v + eps)) * g[c] + beta[c];
    }
  }
  return { ...x, data: out };
}

const relu = (x: Volume): Volume => ({ ...x, data: x.data.map((v) => Math.max(v, 0)) });

function add(a: Volume, b: Volume): Volume {
  return { ...a, data: a.data.map((v, i) => v + b.data[i]) };
}

/** Channels [from, from + count) of x. */
export function channels(x: Volume, from: number, count: number): Volume {
  const out = new Float64Array(x.n * x.h * x.w * count);
  for (let p = 0; p < x.n * x.h * x.w; p++) {
    for (let c = 0; c < count; c++) out[p * count + c] = x.data[p * x.c + from + c];
  }
  return { ...x, data: out, c: count };
}

/** Concatenation along channels. */
export function concat(parts: Volume[]): Volume {
  const c = parts.reduce((s, p) => s + p.c, 0), first = parts[0];
  const out = new Float64Array(first.n * first.h * first.w * c);
  for (let p = 0; p < first.n * first.h * first.w; p++) {
    let o = 0;
    for (const part of parts) {
      for (let k = 0; k < part.c; k++) out[p * c + o + k] = part.data[p * part.c + k];
      o += part.c;
    }
  }
  return { ...first, data: out, c };
}

/** unit(state) */
export function refUnit(state: Volume, u: RefUnit, o: number, eps: number): Volume {
  let h = relu(norm(conv(state, u.conv1, 1, 2 * o), u.g1, u.b1, eps));
  h = relu(norm(conv(h, u.conv2, 3, 2 * o), u.g2, u.b2, eps));
  h = norm(conv(h, u.conv3, 1, o), u.g3, u.b3, eps);
  return u.proj ? add(h, norm(conv(state, u.proj, 1, o), u.gp!, u.bp!, eps)) : h;
}

/** The layer: segments updated in turn (gradual) or all from the old input (simultaneous). */
export function refGunn(
  x: Volume,
  units: RefUnit[],
  mode: "gradual" | "simultaneous",
  eps = 1e-5,
): Volume {
  const S = units.length, o = x.c / S;
  const segs = Array.from({ length: S }, (_, i) => channels(x, i * o, o));
  const old = [...segs];
  for (let i = 0; i < S; i++) {
    const state = mode === "gradual" ? concat(segs) : concat(old);
    segs[i] = add(old[i], refUnit(state, units[i], o, eps));
  }
  return concat(segs);
}
