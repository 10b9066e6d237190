/**
 * The real `rds-csi node` on a real kernel, driven over its CSI socket (one VM, ~2 min under
 * TCG): bad volume contexts fail clearly within the connect timeout and leave nothing behind; a
 * device holding data is never formatted, even when the plugin is SIGKILLed midway through a
 * stage and the stage is retried; connections outside the managed NQN prefix are never touched.
 * Guest side: test/e2e/guest/scenarios-safety.ts.
 */
import { describeScenarios } from "./nodePluginScenarios.ts"

describeScenarios("node plugin on a real kernel: safety", ["foreign", "bad-context", "never-format"], 420)
