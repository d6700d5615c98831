/**
 * Learning-rate schedules as plain data: constant, step decay every k epochs, and multi-step decay
 * at fractions of the run (GUNN: ×0.1 at 50 % and 75 %).
 *
 * @module
 */

/** A schedule; `epoch` below is fractional (epoch + step/stepsPerEpoch). */
export type Schedule =
  | { kind: "constant" }
  | { kind: "step"; everyEpochs: number; gamma: number }
  | {
    kind: "multistep";
    atFractions: number[];
    gamma: number;
    /**
     * Torch's per-epoch form (the GUNN code): epoch e = 1, 2, … of N runs at the rate decayed
     * once for every fraction f with e ≥ f·N — one epoch earlier than the fractional form
     */
    torchEpochs?: boolean;
  };

/**
 * The learning rate at a (fractional) epoch.
 *
 * @example
 * ```ts
 * import { lrAt } from "./schedule.ts";
 * const s = { kind: "multistep" as const, atFractions: [0.5, 0.75], gamma: 0.1 };
 * if (Math.abs(lrAt(s, 0.1, 6, 10) - 0.01) > 1e-12) throw new Error();
 * ```
 */
export function lrAt(s: Schedule, base: number, epoch: number, totalEpochs: number): number {
  switch (s.kind) {
    case "constant":
      return base;
    case "step":
      return base * s.gamma ** Math.floor(epoch / s.everyEpochs + 1e-9);
    case "multistep": {
      const at = s.torchEpochs ? Math.floor(epoch + 1e-9) + 1 : epoch;
      const passed = s.atFractions.filter((f) => at >= f * totalEpochs - 1e-9).length;
      return base * s.gamma ** passed;
    }
  }
}
