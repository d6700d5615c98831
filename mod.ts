/**
 * gradlab — reproduce, run and extend four papers about what lives inside trained networks,
 * in Deno + TensorFlow.js. This module is the public API; the scripts in `scripts/` and the
 * notebooks in `notebooks/` are built from it.
 *
 * @module
 */

export {
  BACKEND_CHOICES,
  type BackendChoice,
  type BackendInfo,
  BackendUnavailableError,
  currentBackend,
  initBackend,
  probeWebGpu,
} from "./lib/backend/select.ts";
export { type ConfigSpec, ConfigError, parseConfig } from "./lib/config/parse.ts";
export { runCli } from "./lib/config/cli.ts";
export { Rng, type RngState } from "./lib/util/rng.ts";
export { UserError } from "./lib/util/errors.ts";
