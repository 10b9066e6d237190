/**
 * The whole driver on a real kernel, one VM (a few minutes under TCG; csi-sanity, when its
 * binary is there, adds the most): the RDS emulator on nvmet behind Debian's sshd, `rds-csi
 * controller` over SSH and `rds-csi node`, driven over both CSI sockets. Guest side:
 * test/e2e/guest/controller.guest.ts. csi-sanity lives in ../shared/tools (not on users'
 * machines): without it that scenario passes saying NOT RUN, and this file prints so.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { describeScenarios } from "./nodePluginScenarios.ts"
import { REPO } from "./vm/runInVm.ts"

const SANITY = path.resolve(REPO, "../shared/tools/csi-sanity/csi-sanity")
if (!fs.existsSync(SANITY)) console.log(`csi-sanity NOT RUN: ${SANITY} is absent (users' machines do not have ../shared/tools)`)

describeScenarios("the whole driver on a real kernel: controller + node + emulator on nvmet", ["provision", "fencing", "full-pool", "csi-sanity"], 3000, "test/e2e/guest/controller.sh")
