/**
 * The version every command reports: package.json's, read once.
 *
 * May import: nothing.
 */
import { readFileSync } from "node:fs"

export const VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version
