/**
 * Commands: the validators (what reaches a RouterOS command), every command's exact text and
 * retry flag, and the size arithmetic. A property holds the injection rule (SPEC §9): any string
 * either fails validation or yields commands whose variable parts stay inside the strict
 * character sets, so no `"`, `;`, `$`, `[`, `]`, newline or backslash ever comes from input.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Arbitrary, Result, Schema } from "effect"
import {
  addDisk,
  allowHost,
  growDisk,
  listDisks,
  poolOfPath,
  printDisk,
  printFile,
  printPool,
  printSystem,
  removeDisk,
  removeFile,
  type RosCommand,
  rosNqn,
  type RosNqn,
  rosPath,
  type RosPath,
  roundUpToMiB,
  sizeArg,
  slot,
  type Slot
} from "../../src/rds/Commands.ts"
import { bytesOf } from "../../src/rds/RouterOsParser.ts"
import { replay, RUNS, SEED } from "./seed.ts"

const MiB = 2 ** 20
const GiB = 2 ** 30

const ok = <A, E>(r: Result.Result<A, E>): A => {
  if (Result.isFailure(r)) return assert.fail(`expected success, got ${JSON.stringify(r.failure)}`)
  return r.success
}

const S = ok(slot("pvc-1"))
const PATH = ok(rosPath("/storage-pool/k8s/pvc-1.img", "path"))
const NQN = ok(rosNqn("nqn.2000-02.com.mikrotik:pvc-1", "nqn"))
const HOST = ok(rosNqn("nqn.2014-08.org.nvmexpress:uuid:0f3c5a2e-1b7d-4c1a-9d1e-7a4b8c2d9e10", "host"))

// ---- Validators -------------------------------------------------------------------------------

const FORBIDDEN = ["\"", ";", "$", "[", "]", "\n", "\r", "\\", " ", "\t", "{", "}", "'", "`", "=", "#", "é", "\0"]

describe("slot", () => {
  const accepted = ["pvc-1", "a", "Z", "0", "pvc-0f3c.1_x", "Sanity-Test-Volume_9", "1.2", "a".repeat(128), "a.b.c", "a-"]
  const rejected = ["", "-a", ".a", "_a", "a..b", "..", "a/b", "a:b", "a".repeat(129), ...FORBIDDEN.map((c) => `a${c}b`), ...FORBIDDEN]
  for (const value of accepted) {
    it(`accepts ${JSON.stringify(value.length > 20 ? `${value.slice(0, 8)}…(${value.length})` : value)}`, () => {
      assert.strictEqual(ok(slot(value)), value)
    })
  }
  for (const value of rejected) {
    it(`rejects ${JSON.stringify(value.length > 20 ? `${value.slice(0, 8)}…(${value.length})` : value)}`, () => {
      const r = slot(value, "volume.name")
      if (Result.isSuccess(r)) return assert.fail("accepted")
      assert.strictEqual(r.failure._tag, "InvalidArgument")
      assert.strictEqual(r.failure.field, "volume.name")
      assert.include(r.failure.message, "volume.name")
    })
  }
  it("names the field `name` by default; empty is `is required`", () => {
    const r = Result.flip(slot(""))
    assert.deepStrictEqual([Result.getOrThrow(r).field, Result.getOrThrow(r).rule], ["name", "is required"])
    assert.strictEqual(Result.getOrThrow(Result.flip(slot("a b"))).field, "name")
  })
})

describe("rosPath", () => {
  const accepted = ["/storage-pool", "/storage-pool/k8s", "/storage-pool/k8s/pvc-1.img", "/_x", "/a/b.c-d_e", "/a/b..c", `/${"a".repeat(128)}`]
  const rejected = [
    "",
    "/",
    "storage-pool",
    "storage-pool/k8s",
    "/storage-pool/",
    "//a",
    "/a//b",
    "/a/./b",
    "/a/../b",
    "/a/..",
    "/.hidden",
    "/-a",
    `/${"a".repeat(129)}`,
    ...FORBIDDEN.map((c) => `/storage-pool/a${c}b`)
  ]
  for (const value of accepted) {
    it(`accepts ${JSON.stringify(value.length > 30 ? `${value.slice(0, 8)}…(${value.length})` : value)}`, () => {
      assert.strictEqual(ok(rosPath(value, "p")), value)
    })
  }
  for (const value of rejected) {
    it(`rejects ${JSON.stringify(value.length > 30 ? `${value.slice(0, 8)}…(${value.length})` : value)}`, () => {
      const r = rosPath(value, "parameters.volumePath")
      if (Result.isSuccess(r)) return assert.fail("accepted")
      assert.strictEqual(r.failure._tag, "InvalidArgument")
      assert.strictEqual(r.failure.field, "parameters.volumePath")
      assert.include(r.failure.message, "parameters.volumePath")
    })
  }
  it("poolOfPath: the first segment", () => {
    assert.strictEqual(poolOfPath(PATH), "storage-pool")
    assert.strictEqual(poolOfPath(ok(rosPath("/p", "p"))), "p")
  })
})

describe("rosNqn", () => {
  const accepted = [
    "nqn.2000-02.com.mikrotik:pvc-1",
    "nqn.2014-08.org.nvmexpress:uuid:0f3c5a2e-1b7d-4c1a-9d1e-7a4b8c2d9e10",
    "nqn.a",
    "nqn._:.-",
    `nqn.${"a".repeat(219)}`
  ]
  const rejected = ["", "nqn.", "nqn", "NQN.2000-02.com.x:y", "nqn:2000", " nqn.a", "nqn.a ", "nqn.a/b", `nqn.${"a".repeat(220)}`, ...FORBIDDEN.map((c) => `nqn.a${c}b`)]
  for (const value of accepted) {
    it(`accepts ${JSON.stringify(value.length > 40 ? `${value.slice(0, 8)}…(${value.length})` : value)}`, () => {
      assert.strictEqual(ok(rosNqn(value, "n")), value)
    })
  }
  for (const value of rejected) {
    it(`rejects ${JSON.stringify(value.length > 40 ? `${value.slice(0, 8)}…(${value.length})` : value)}`, () => {
      const r = rosNqn(value, "parameters.hostNqn")
      if (Result.isSuccess(r)) return assert.fail("accepted")
      assert.strictEqual(r.failure._tag, "InvalidArgument")
      assert.strictEqual(r.failure.field, "parameters.hostNqn")
      assert.include(r.failure.message, "parameters.hostNqn")
    })
  }
})

// ---- Commands ---------------------------------------------------------------------------------

describe("command text", () => {
  const cases: ReadonlyArray<readonly [RosCommand, RosCommand["name"], string, boolean]> = [
    [printDisk(S), "disk.print", `/disk print detail where slot="pvc-1"`, true],
    [listDisks(), "disk.list", "/disk print detail", true],
    [
      addDisk({ slot: S, filePath: PATH, sizeBytes: 50 * GiB, port: 4420, nqn: NQN }),
      "disk.add",
      `/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=50G slot="pvc-1" nvme-tcp-export=yes nvme-tcp-server-port=4420 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1`,
      false
    ],
    [
      addDisk({ slot: S, filePath: PATH, sizeBytes: 1.5 * GiB, port: 4421, nqn: NQN }),
      "disk.add",
      `/disk add type=file file-path=/storage-pool/k8s/pvc-1.img file-size=1536M slot="pvc-1" nvme-tcp-export=yes nvme-tcp-server-port=4421 nvme-tcp-server-nqn=nqn.2000-02.com.mikrotik:pvc-1`,
      false
    ],
    [growDisk(S, 60 * GiB), "disk.grow", `/disk set [find slot="pvc-1"] file-size=60G`, true],
    [growDisk(S, 60 * GiB + 512 * MiB), "disk.grow", `/disk set [find slot="pvc-1"] file-size=61952M`, true],
    [
      allowHost(S, HOST),
      "disk.allow-host",
      `/disk set [find slot="pvc-1"] nvme-tcp-server-allow-host-name="nqn.2014-08.org.nvmexpress:uuid:0f3c5a2e-1b7d-4c1a-9d1e-7a4b8c2d9e10"`,
      true
    ],
    [allowHost(S, ""), "disk.allow-host", `/disk set [find slot="pvc-1"] nvme-tcp-server-allow-host-name=""`, true],
    [removeDisk(S), "disk.remove", `/disk remove [find slot="pvc-1"]`, true],
    [printFile(PATH), "file.print", `/file print detail where name="storage-pool/k8s/pvc-1.img"`, true],
    [removeFile(PATH), "file.remove", `/file remove [find name="storage-pool/k8s/pvc-1.img"]`, true],
    [printPool(poolOfPath(PATH)), "pool.print", `/disk print detail where mount-point="storage-pool"`, true],
    [printSystem(), "system.print", "/system resource print", true]
  ]
  for (const [command, name, text, idempotent] of cases) {
    it(`${name}: ${text}`, () => {
      assert.deepStrictEqual(command, { name, text, idempotent })
    })
  }
  it("only add is not idempotent (the caller reads first)", () => {
    assert.deepStrictEqual(cases.filter(([c]) => !c.idempotent).map(([c]) => c.name), ["disk.add", "disk.add"])
  })
})

// ---- Sizes ------------------------------------------------------------------------------------

describe("sizeArg and roundUpToMiB", () => {
  const sizeArgs: ReadonlyArray<readonly [number, string]> = [
    [GiB, "1G"],
    [1.5 * GiB, "1536M"],
    [50 * GiB, "50G"],
    [512 * MiB, "512M"],
    [MiB, "1M"],
    [GiB + MiB, "1025M"],
    [2 ** 50, "1048576G"],
    [0, "0G"],
    // Not whole MiB (callers round first): rounded up, never down (the Go driver's CSI violation).
    [GiB + 1, "1025M"],
    [1, "1M"]
  ]
  for (const [bytes, text] of sizeArgs) {
    it(`sizeArg(${bytes}) = ${text}`, () => assert.strictEqual(sizeArg(bytes), text))
  }
  const rounds: ReadonlyArray<readonly [number, number]> = [
    [0, 0],
    [1, MiB],
    [MiB - 1, MiB],
    [MiB, MiB],
    [MiB + 1, 2 * MiB],
    [1.5 * GiB - 1, 1.5 * GiB],
    [1.5 * GiB, 1.5 * GiB],
    [GiB, GiB],
    [2 ** 50 - 1, 2 ** 50]
  ]
  for (const [bytes, rounded] of rounds) {
    it(`roundUpToMiB(${bytes}) = ${rounded}`, () => assert.strictEqual(roundUpToMiB(bytes), rounded))
  }

  const bytes = Arbitrary.flatMap(Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 50 }))), (bits) =>
    Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 2 ** bits }))))
  it.prop("roundUpToMiB is the least whole MiB ≥ bytes; sizeArg of it reads back exactly (bytesOf)", [bytes], ([b]) => {
    const r = roundUpToMiB(b)
    assert.isTrue(r >= b && r - b < MiB && r % MiB === 0, `${b} → ${r}; ${replay}`)
    assert.match(sizeArg(r), /^\d+[GM]$/)
    assert.strictEqual(bytesOf(sizeArg(r)), r)
    // Any byte count: the size asked of the RDS is never below it.
    assert.isTrue(bytesOf(sizeArg(b))! >= b, `${b}; ${replay}`)
  }, { arbitrary: { runs: RUNS, seed: SEED } })
})

// ---- Injection: any input fails validation or stays inside the strict sets ---------------------

const SLOT_SET = "[A-Za-z0-9._-]+"
const PATH_SET = "[A-Za-z0-9._/-]+"
const NQN_SET = "nqn\\.[A-Za-z0-9.:_-]+"

/** Each builder's full text, the variable parts captured. Anchored: nothing else may appear. */
const TEMPLATES: ReadonlyArray<readonly [string, RegExp]> = [
  ["disk.print", new RegExp(`^/disk print detail where slot="(${SLOT_SET})"$`)],
  [
    "disk.add",
    new RegExp(
      `^/disk add type=file file-path=(/${PATH_SET}) file-size=(\\d+[GM]) slot="(${SLOT_SET})" nvme-tcp-export=yes nvme-tcp-server-port=(\\d+) nvme-tcp-server-nqn=(${NQN_SET})$`
    )
  ],
  ["disk.grow", new RegExp(`^/disk set \\[find slot="(${SLOT_SET})"\\] file-size=(\\d+[GM])$`)],
  ["disk.allow-host", new RegExp(`^/disk set \\[find slot="(${SLOT_SET})"\\] nvme-tcp-server-allow-host-name="((?:${NQN_SET})?)"$`)],
  ["disk.remove", new RegExp(`^/disk remove \\[find slot="(${SLOT_SET})"\\]$`)],
  ["file.print", new RegExp(`^/file print detail where name="(${PATH_SET})"$`)],
  ["file.remove", new RegExp(`^/file remove \\[find name="(${PATH_SET})"\\]$`)],
  ["pool.print", new RegExp(`^/disk print detail where mount-point="(${SLOT_SET})"$`)]
]

const checkCommand = (command: RosCommand): void => {
  const template = TEMPLATES.find(([name]) => name === command.name)
  assert.isDefined(template, command.name)
  const m = template![1].exec(command.text)
  assert.isNotNull(m, `${command.name}: ${JSON.stringify(command.text)}; ${replay}`)
  for (const part of m!.slice(1)) {
    for (const c of ["\"", ";", "$", "[", "]", "\n", "\r", "\\", " ", "\t"]) {
      assert.notInclude(part, c, `${command.name}: ${JSON.stringify(command.text)}; ${replay}`)
    }
  }
}

const char = Arbitrary.schema(Schema.Literals([
  ..."aZ09._-/:",
  "\"",
  ";",
  "$",
  "[",
  "]",
  "\n",
  "\r",
  "\\",
  " ",
  "\t",
  "{",
  "}",
  "'",
  "`",
  "=",
  "é",
  "\0",
  "..",
  "nqn.",
  "/storage-pool/",
  "$(reboot)",
  "\"]; /system reboot; [find \""
] as const))
const prefix = Arbitrary.schema(Schema.Literals(["", "", "/", "nqn.", "/storage-pool/", "a"] as const))
const int = (minimum: number, maximum: number) => Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))
const safeChar = Arbitrary.schema(Schema.Literals([..."abzAZ09._-/:"] as [string, ...Array<string>]))
const wild = Arbitrary.all([prefix, Arbitrary.array(char, { maxLength: 40 })]).pipe(Arbitrary.map(([p, cs]) => p + cs.join("")))
// Near misses: a valid-looking value with at most one character (or payload) slipped in.
const nearMiss = Arbitrary.all([prefix, Arbitrary.array(safeChar, { minLength: 1, maxLength: 40 }), char, int(0, 40), int(0, 2)]).pipe(
  Arbitrary.map(([p, cs, bad, at, keep]) => {
    const body = cs.join("")
    return p + (keep === 0 ? body : body.slice(0, at) + bad + body.slice(at))
  })
)
const anyString = Arbitrary.flatMap(int(0, 1), (i) => (i === 0 ? wild : nearMiss))
const port = Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 65535 })))

const accepted = { slot: 0, path: 0, nqn: 0, inputs: 0 }

describe("injection (property)", () => {
  afterAll(() => {
    // Printed so a generator that stopped producing valid values (and so tests nothing) shows.
    console.log(`Commands injection property: ${replay}; of ${accepted.inputs} inputs, valid as slot ${accepted.slot}, path ${accepted.path}, nqn ${accepted.nqn}`)
  })

  it.prop("a random string is rejected or produces only strict-charset variable parts", [anyString, port], ([input, p]) => {
    const s = slot(input)
    const path = rosPath(input, "p")
    const nqn = rosNqn(input, "n")
    const slots: Array<Slot> = [S]
    const paths: Array<RosPath> = [PATH]
    const nqns: Array<RosNqn> = [NQN]
    accepted.inputs++
    if (Result.isSuccess(s)) slots.push(s.success), accepted.slot++
    if (Result.isSuccess(path)) paths.push(path.success), accepted.path++
    if (Result.isSuccess(nqn)) nqns.push(nqn.success), accepted.nqn++
    for (const sl of slots) {
      for (const pa of paths) {
        for (const nq of nqns) {
          checkCommand(printDisk(sl))
          checkCommand(addDisk({ slot: sl, filePath: pa, sizeBytes: 3 * GiB, port: p, nqn: nq }))
          checkCommand(growDisk(sl, 5 * GiB + MiB))
          checkCommand(allowHost(sl, nq))
          checkCommand(allowHost(sl, ""))
          checkCommand(removeDisk(sl))
          checkCommand(printFile(pa))
          checkCommand(removeFile(pa))
          checkCommand(printPool(poolOfPath(pa)))
        }
      }
    }
  }, { arbitrary: { runs: 2 * RUNS, seed: SEED } })

  it("the classic payloads are all rejected", () => {
    for (const payload of ["pvc\"]; /system reboot; [find \"", "$(reboot)", "a\n/system reboot", "a\\\"", "[find]", "a;b"]) {
      assert.isTrue(Result.isFailure(slot(payload)), payload)
      assert.isTrue(Result.isFailure(rosPath(`/storage-pool/${payload}`, "p")), payload)
      assert.isTrue(Result.isFailure(rosNqn(`nqn.${payload}`, "n")), payload)
    }
  })
})
