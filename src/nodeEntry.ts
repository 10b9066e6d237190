/**
 * The start-up path of `rds-csi node` (bin/rds-csi.js takes it for `rds-csi node …`): the plain
 * command line read by NodeArgs.ts, validated by Config.ts, and the plugin run, without loading
 * the CLI library or the other commands (issue 12: start-up under a second of their cost on
 * every restart). A line it does not take (help, a mistake, anything unusual) goes to the full
 * CLI, which reads, explains or rejects it exactly as before.
 *
 * May import: NodeArgs, Config, main, RunMain, Version, csi/Proto and WarmUp (for the start-up snapshot's builder).
 */
import { Result } from "effect"
import { toSettings } from "./Config.ts"
import { runNode, type StartedFrom } from "./main.ts"
import { parseNodeArgs } from "./NodeArgs.ts"
import { runMain } from "./RunMain.ts"
import { VERSION } from "./Version.ts"

/** For scripts/snapshot-entry.cjs: the CSI codecs evaluated into the start-up snapshot. */
export { useStaticCodecs } from "./csi/Proto.ts"
/** For scripts/snapshot-entry.cjs: the first RPCs' pure code run once into the start-up snapshot. */
export { warmUp } from "./WarmUp.ts"

/** Runs the node plugin when `argv` (after `node`) is a plain, valid line and answers true; false = the full CLI's turn. */
export const runNodeFast = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>> = process.env,
  startedFrom?: StartedFrom
): boolean => {
  const parsed = parseNodeArgs(argv, env)
  if (parsed === undefined) return false
  const settings = toSettings(parsed, VERSION, env)
  if (Result.isFailure(settings)) return false
  runMain(runNode(settings.success, startedFrom))
  return true
}
