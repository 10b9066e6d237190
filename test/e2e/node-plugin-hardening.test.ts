/**
 * The node-plugin review's defects on a real kernel (issue 10), against the real `rds-csi node`
 * over its CSI socket (one VM): hostile volume contexts, two namespaces of one subsystem staged
 * at once with one failing, raw-block devices trading names while the plugin is down, and records
 * of an earlier boot. Guest side: test/e2e/guest/scenarios-hardening.ts.
 */
import { describeScenarios } from "./nodePluginScenarios.ts"

describeScenarios("node plugin on a real kernel: hardening", ["hostile-context", "shared-subsystem", "swapped-block", "reboot-records"], 480)
