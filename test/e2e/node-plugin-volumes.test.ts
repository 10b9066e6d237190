/**
 * The real `rds-csi node` on a real kernel, driven over its CSI socket (one VM, ~2 min under
 * TCG): the volume life cycle for ext4, xfs and raw block with data surviving unstage/restage,
 * every RPC repeated, two volumes on one target, and a plugin SIGKILLed under a staged and
 * published volume. Guest side: test/e2e/guest/scenarios-volumes.ts.
 */
import { describeScenarios } from "./nodePluginScenarios.ts"

describeScenarios("node plugin on a real kernel: volumes", ["lifecycle", "idempotency", "two-volumes", "restart"], 420)
