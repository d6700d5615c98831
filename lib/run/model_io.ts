/**
 * Saving and loading TF.js layers models (custom layers included, once registered with
 * `tf.serialization.registerClass`) as `<name>.model.json` + `<name>.weights.bin`, and copying
 * weights to and from named host arrays for checkpoints.
 *
 * @module
 */

import * as tf from "@tensorflow/tfjs";
import type { LayersModel, Variable } from "../util/tf_types.ts";
import { writeFileAtomic } from "../util/atomic.ts";
import type { NamedArray } from "./bundle.ts";

/** Saves `model` (topology + weights) next to `pathPrefix`. */
export async function saveModel(model: LayersModel, pathPrefix: string): Promise<void> {
  await model.save(tf.io.withSaveHandler(async (a) => {
    const weights = a.weightData instanceof ArrayBuffer
      ? new Uint8Array(a.weightData)
      : new Uint8Array(await new Blob(a.weightData as ArrayBuffer[]).arrayBuffer());
    await writeFileAtomic(`${pathPrefix}.weights.bin`, weights);
    await writeFileAtomic(
      `${pathPrefix}.model.json`,
      JSON.stringify({
        modelTopology: a.modelTopology,
        weightSpecs: a.weightSpecs,
        format: a.format,
      }),
    );
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
  }));
}

/** Loads a model saved by {@link saveModel}. */
export async function loadModel(pathPrefix: string): Promise<LayersModel> {
  const json = JSON.parse(await Deno.readTextFile(`${pathPrefix}.model.json`));
  const bin = await Deno.readFile(`${pathPrefix}.weights.bin`);
  return await tf.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: json.weightSpecs,
      weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
    }),
  );
}

/**
 * Host copies of variables, named `<prefix><index>`: by position, because TF.js variable names
 * carry a process-wide counter and differ between the run and its resumption.
 */
export function variablesToArrays(
  vars: Variable[] | tf.LayerVariable[],
  prefix: string,
): Promise<NamedArray[]> {
  return Promise.all(vars.map(async (v, i) => {
    const t = v instanceof tf.Variable ? v : (v as tf.LayerVariable).read();
    return { name: `${prefix}${i}`, shape: [...t.shape], values: (await t.data()) as Float32Array };
  }));
}

/** Restores variables from {@link variablesToArrays}'s names; throws on a missing or misshapen one. */
export function arraysToVariables(
  vars: Variable[] | tf.LayerVariable[],
  prefix: string,
  arrays: Map<string, NamedArray>,
): void {
  vars.forEach((v, i) => {
    const a = arrays.get(`${prefix}${i}`);
    if (!a) throw new Error(`checkpoint lacks ${prefix}${i} (${v.name})`);
    if (a.shape.join() !== v.shape.join()) {
      throw new Error(`checkpoint ${a.name} has shape [${a.shape}], variable has [${v.shape}]`);
    }
    const t = tf.tensor(a.values, a.shape);
    if (v instanceof tf.Variable) v.assign(t);
    else (v as tf.LayerVariable).write(t);
    t.dispose();
  });
}
