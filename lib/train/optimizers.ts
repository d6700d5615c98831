/**
 * The optimizers the papers use — SGD (momentum, Nesterov, coupled weight decay), RMSProp, Adam —
 * with state that can be saved and restored exactly (checkpoints and resume).
 *
 * Conventions (PyTorch's, which match Chainer's and Torch7's for these settings):
 * - weight decay adds `wd·w` to the gradient before anything else;
 * - SGD momentum: v ← μv + g; step = g + μv (Nesterov) or v; w ← w − lr·step;
 * - RMSProp: s ← ρs + (1−ρ)g²; w ← w − lr·g/√(s+ε) (TensorFlow's form: ε inside the root);
 * - Adam: bias-corrected moments, w ← w − lr·m̂/(√v̂ + ε).
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { Tensor, Variable } from "../util/tf_types.ts";

/** Saved optimizer state: named float arrays plus the step count. */
export interface OptimizerState {
  /** optimizer kind ("sgd", "rmsprop", "adam") */
  kind: string;
  /** updates applied */
  step: number;
  /** state tensors by "<position>/<name>" */
  slots: Record<string, { shape: number[]; values: Float32Array }>;
}

/** Common interface. */
export abstract class Optimizer {
  /** number of updates applied */
  step = 0;
  /** state tensors per parameter, by "<position>/<name>" */
  protected slots = new Map<string, Variable>();

  private readonly index = new Map<Variable, number>();

  /** An optimizer of `params`; `kind` names its state. */
  constructor(protected readonly params: Variable[], readonly kind: string) {
    params.forEach((p, i) => this.index.set(p, i));
    if (this.index.size !== params.length) throw new Error("optimizer got a parameter twice");
  }

  // Slots are keyed by parameter position, not name: TF.js names carry a process-wide counter,
  // so a resumed run's variables have other names.
  /** The state tensor `name` of `p`, created from `init` on first use. */
  protected slot(name: string, p: Variable, init: () => Tensor): Variable {
    const key = `${this.index.get(p)}/${name}`;
    let v = this.slots.get(key);
    if (!v) {
      v = tf.variable(tf.tidy(init), false, `${key}/${crypto.randomUUID()}`);
      this.slots.set(key, v);
    }
    return v;
  }

  /** Applies one update with learning rate `lr`; `grads[i]` belongs to `params[i]`. */
  apply(grads: Tensor[], lr: number): void {
    if (grads.length !== this.params.length) {
      throw new Error(
        `optimizer got ${grads.length} gradients for ${this.params.length} parameters`,
      );
    }
    this.step++;
    tf.tidy(() => {
      this.params.forEach((p, i) => {
        if (grads[i]) this.update(p, grads[i], lr);
      });
    });
  }

  /** Applies one update to `p` from its gradient `g`. */
  protected abstract update(p: Variable, g: Tensor, lr: number): void;

  /** A copy of the state. */
  async getState(): Promise<OptimizerState> {
    const slots: OptimizerState["slots"] = {};
    for (const [k, v] of this.slots) {
      slots[k] = { shape: v.shape, values: (await v.data()) as Float32Array };
    }
    return { kind: this.kind, step: this.step, slots };
  }

  /** Restores a state from {@link getState} (same parameters, same kind). */
  setState(s: OptimizerState): void {
    if (s.kind !== this.kind) throw new Error(`optimizer state is for ${s.kind}, not ${this.kind}`);
    this.step = s.step;
    for (const [k, { shape, values }] of Object.entries(s.slots)) {
      const existing = this.slots.get(k);
      const t = tf.tensor(values, shape);
      if (existing) {
        existing.assign(t);
        t.dispose();
      } else {
        this.slots.set(k, tf.variable(t, false, `${k}/${crypto.randomUUID()}`));
        t.dispose();
      }
    }
  }

  /** Frees the state tensors. */
  dispose(): void {
    for (const v of this.slots.values()) v.dispose();
    this.slots.clear();
  }
}

/** Stochastic gradient descent with optional momentum, Nesterov and weight decay. */
export class Sgd extends Optimizer {
  /** SGD of `params` with options `o`. */
  constructor(
    params: Variable[],
    readonly o: { momentum?: number; nesterov?: boolean; weightDecay?: number } = {},
  ) {
    super(params, "sgd");
  }

  /** One kernel for every parameter where the backend has it (the native one). */
  override apply(grads: Tensor[], lr: number): void {
    const all = this.params.every((p, i) => p.dtype === "float32" && grads[i]);
    if (!all || !tf.getKernel("GradlabSgdUpdateMany", tf.getBackend())) {
      return super.apply(grads, lr);
    }
    if (grads.length !== this.params.length) super.apply(grads, lr); // throws the same message
    this.step++;
    const mu = this.o.momentum ?? 0, wd = this.o.weightDecay ?? 0;
    tf.tidy(() => {
      const inputs: Record<string, Tensor> = {};
      this.params.forEach((p, i) => {
        inputs[`p${i}`] = p;
        inputs[`g${i}`] = grads[i];
        if (mu) inputs[`v${i}`] = this.slot("momentum", p, () => tf.zerosLike(p));
      });
      const outs = tf.engine().runKernel("GradlabSgdUpdateMany", inputs, {
        count: this.params.length,
        lr,
        momentum: mu,
        weightDecay: wd,
        nesterov: Boolean(this.o.nesterov),
      }) as Tensor[];
      const k = mu ? 2 : 1;
      this.params.forEach((p, i) => {
        p.assign(outs[k * i]);
        if (mu) (inputs[`v${i}`] as Variable).assign(outs[k * i + 1]);
      });
    });
  }

  /** One SGD update of `p`. */
  protected update(p: Variable, g: Tensor, lr: number): void {
    const mu = this.o.momentum ?? 0, wd = this.o.weightDecay ?? 0;
    if (tf.getKernel("GradlabSgdUpdate", tf.getBackend()) && p.dtype === "float32") {
      // the native backend does the whole step in one kernel (same formula)
      const v = mu ? this.slot("momentum", p, () => tf.zerosLike(p)) : undefined;
      const [np, nv] = tf.engine().runKernel(
        "GradlabSgdUpdate",
        v ? { p, g, v } : { p, g },
        { lr, momentum: mu, weightDecay: wd, nesterov: Boolean(this.o.nesterov) },
      ) as Tensor[];
      p.assign(np);
      if (v) v.assign(nv);
      return;
    }
    let d = wd ? g.add(p.mul(wd)) : g;
    if (mu) {
      const v = this.slot("momentum", p, () => tf.zerosLike(p));
      const nv = v.mul(mu).add(d);
      v.assign(nv);
      d = this.o.nesterov ? d.add(nv.mul(mu)) : nv;
    }
    p.assign(p.sub(d.mul(lr)));
  }
}

/** RMSProp (TensorFlow's form); `initialMeanSquare` 1 reproduces TF1's slot initialisation. */
export class RmsProp extends Optimizer {
  /** RMSProp of `params` with options `o`. */
  constructor(
    params: Variable[],
    readonly o: { rho?: number; epsilon?: number; initialMeanSquare?: number } = {},
  ) {
    super(params, "rmsprop");
  }

  /** One RMSProp update of `p`. */
  protected update(p: Variable, g: Tensor, lr: number): void {
    const rho = this.o.rho ?? 0.9, eps = this.o.epsilon ?? 1e-10;
    const init = this.o.initialMeanSquare ?? 0;
    const s = this.slot("ms", p, () => tf.fill(p.shape, init));
    if (tf.getKernel("GradlabRmsPropUpdate", tf.getBackend()) && p.dtype === "float32") {
      const [np, nsv] = tf.engine().runKernel("GradlabRmsPropUpdate", { p, g, s }, {
        lr,
        rho,
        epsilon: eps,
      }) as Tensor[];
      p.assign(np);
      s.assign(nsv);
      return;
    }
    const ns = s.mul(rho).add(g.square().mul(1 - rho));
    s.assign(ns);
    p.assign(p.sub(g.mul(lr).div(ns.add(eps).sqrt())));
  }
}

/** Adam, with optional (coupled) weight decay. */
export class Adam extends Optimizer {
  /** Adam of `params` with options `o`. */
  constructor(
    params: Variable[],
    readonly o: { beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number } = {},
  ) {
    super(params, "adam");
  }

  /** One Adam update of `p`. */
  protected update(p: Variable, g: Tensor, lr: number): void {
    const b1 = this.o.beta1 ?? 0.9, b2 = this.o.beta2 ?? 0.999, eps = this.o.epsilon ?? 1e-7;
    const wd = this.o.weightDecay ?? 0;
    const d = wd ? g.add(p.mul(wd)) : g;
    const m = this.slot("m", p, () => tf.zerosLike(p));
    const v = this.slot("v", p, () => tf.zerosLike(p));
    const nm = m.mul(b1).add(d.mul(1 - b1));
    const nv = v.mul(b2).add(d.square().mul(1 - b2));
    m.assign(nm);
    v.assign(nv);
    const c1 = 1 - b1 ** this.step, c2 = 1 - b2 ** this.step;
    p.assign(p.sub(nm.div(c1).div(nv.div(c2).sqrt().add(eps)).mul(lr)));
  }
}

/** Optimizer settings as plain data (config files, checkpoints). */
export type OptimizerConfig =
  | { kind: "sgd"; momentum?: number; nesterov?: boolean; weightDecay?: number }
  | { kind: "rmsprop"; rho?: number; epsilon?: number; initialMeanSquare?: number }
  | { kind: "adam"; beta1?: number; beta2?: number; epsilon?: number; weightDecay?: number };

/** Builds an optimizer from its config. */
export function makeOptimizer(params: Variable[], c: OptimizerConfig): Optimizer {
  switch (c.kind) {
    case "sgd":
      return new Sgd(params, c);
    case "rmsprop":
      return new RmsProp(params, c);
    case "adam":
      return new Adam(params, c);
  }
}
