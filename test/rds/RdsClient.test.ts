/**
 * RdsClient's reading of a failed command's output: failureReasonOf (what the caller can do about
 * it) and looksFailed (a failure printed with exit status 0), over what RouterOS prints.
 */
import { assert, describe, it } from "@effect/vitest"
import { failureReasonOf, looksFailed, type RdsCommandFailureReason } from "../../src/rds/RdsClient.ts"

const DISK = `type=file slot="pvc-test-123" slot-default="" parent="" fs=-
               model="/storage-pool/test.img"
               size=53 687 091 200 mount-filesystem=yes mount-read-only=no
`

describe("failureReasonOf", () => {
  const cases: ReadonlyArray<readonly [string, RdsCommandFailureReason]> = [
    ["failure: not enough space\n", "NoSpace"],
    ["Failure: Not Enough Space", "NoSpace"],
    ["no such item\n", "NotFound"],
    ["failure: no such item\n", "NotFound"],
    ["no such item (4)\r\n", "NotFound"],
    ["failure: item with such name already exists\n", "AlreadyExists"],
    ["failure: already have disk with such slot\n", "AlreadyExists"],
    ["syntax error (line 1 column 7)\n", "InvalidParameter"],
    ["expected end of command (line 1 column 30)\n", "InvalidParameter"],
    ["invalid value for argument file-size\n", "InvalidParameter"],
    ["invalid parameter\n", "InvalidParameter"],
    ["bad command name dsk (line 1 column 2)\n", "Failed"],
    ["failure: could not create file\n", "Failed"],
    ["", "Failed"]
  ]
  for (const [output, reason] of cases) {
    it(`${JSON.stringify(output)} → ${reason}`, () => assert.strictEqual(failureReasonOf(output), reason))
  }
})

describe("looksFailed", () => {
  const failed = [
    "failure: not enough space\n",
    "failure: item with such name already exists\n",
    "FAILURE: not enough space",
    "no such item\n",
    "syntax error (line 1 column 7)\n",
    "expected end of command (line 1 column 30)\n",
    "invalid value for argument file-size\n",
    "bad command name dsk (line 1 column 2)\n",
    "\r\n  failure: not enough space\r\n"
  ]
  const fine = [
    "",
    "\n",
    DISK,
    " 0  type=file slot=\"pvc-1\" size=1 073 741 824\n",
    // A failure word inside a value is not a failure.
    "type=file slot=\"pvc-1\" comment=\"failure: not enough space\"\n",
    ";;; no such item\ntype=file slot=\"pvc-1\"\n",
    "Flags: X - disabled\n 0 X  type=file slot=\"a\"\n"
  ]
  for (const output of failed) it(`${JSON.stringify(output)} looks failed`, () => assert.isTrue(looksFailed(output)))
  for (const output of fine) it(`${JSON.stringify(output.slice(0, 40))} does not`, () => assert.isFalse(looksFailed(output)))
})
