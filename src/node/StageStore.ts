/**
 * StageStore: what this node has staged, kept on disk so a restarted plugin knows its volumes
 * (SPEC §5: no operation depends on memory from before a restart). One small JSON record per
 * staged volume: how to reach it, which device and identity it was staged on, how it is
 * mounted. The live layer writes atomically (temp file, fsync, rename) under the state dir.
 *
 * May import: domain.
 */
import { Context, Data, type Effect, Schema } from "effect"

const Identity = Schema.Struct({
  nsid: Schema.Number,
  nguid: Schema.optionalKey(Schema.String),
  uuid: Schema.optionalKey(Schema.String),
  wwid: Schema.optionalKey(Schema.String)
})

export const StageRecord = Schema.Struct({
  version: Schema.Literal(1),
  volumeId: Schema.String,
  stagingPath: Schema.String,
  nqn: Schema.String,
  address: Schema.String,
  port: Schema.Number,
  ctrlLossTmo: Schema.Number,
  reconnectDelay: Schema.Number,
  keepAliveTmo: Schema.optionalKey(Schema.Number),
  selector: Schema.Struct({
    nsid: Schema.optionalKey(Schema.Number),
    nguid: Schema.optionalKey(Schema.String),
    uuid: Schema.optionalKey(Schema.String)
  }),
  /** The device the staging mount was made on: kernel name, dev_t and identity. */
  device: Schema.Struct({ name: Schema.String, devT: Schema.String, identity: Identity }),
  accessType: Schema.Literals(["Mount", "Block"]),
  fsType: Schema.optionalKey(Schema.Literals(["ext4", "xfs"])),
  mountFlags: Schema.Array(Schema.String),
  readOnly: Schema.Boolean,
  /**
   * True when stage made the connection (none existed before). Without a managed prefix, unstage
   * disconnects only such connections: one the plugin found (a boot volume, say) is never its to drop.
   */
  connectedByPlugin: Schema.Boolean,
  /**
   * False from the connect until NodeStage has finished mounting: such a record only tells unstage
   * which connection is this volume's; nothing publishes, monitors or recovers it.
   */
  complete: Schema.Boolean,
  /**
   * The kernel boot (`/proc/sys/kernel/random/boot_id`) the volume was staged in. A record of
   * another boot describes connections and mounts that no longer exist: the monitor never
   * reconnects or remounts it (the volume may be in use on another node by now); only a new
   * NodeStage from kubelet does. Absent in records written before this field existed.
   */
  bootId: Schema.optionalKey(Schema.String),
  /**
   * Set, durably, before NodeUnstage unmounts or disconnects anything: a record left so by a
   * failed or interrupted unstage is never recovered or published, only unstaged again (or
   * staged anew).
   */
  unstaging: Schema.optionalKey(Schema.Boolean),
  /**
   * Devices this volume was on before a recovery moved it (dev_t): a container that holds a
   * private copy of the old mount still sees that device's dead file system. Watched until no
   * mount namespace has them any more.
   */
  supersededDevTs: Schema.optionalKey(Schema.Array(Schema.String)),
  /** Published target paths of this volume (re-bound after a stale-mount recovery). */
  publishedTargets: Schema.Array(Schema.Struct({ path: Schema.String, readOnly: Schema.Boolean })),
  stagedAt: Schema.String
})
export type StageRecord = typeof StageRecord.Type

export class StageStoreError extends Data.TaggedError("StageStoreError")<{
  readonly volumeId: string
  readonly operation: "read" | "write" | "remove" | "list"
  readonly detail: string
}> {
  override get message(): string {
    return `stage state of ${this.volumeId}: ${this.operation} failed: ${this.detail}`
  }
}

export class StageStore extends Context.Service<StageStore, {
  readonly get: (volumeId: string) => Effect.Effect<StageRecord | undefined, StageStoreError>
  /** Writes the record durably before returning. */
  readonly put: (record: StageRecord) => Effect.Effect<void, StageStoreError>
  readonly remove: (volumeId: string) => Effect.Effect<void, StageStoreError>
  /**
   * Every readable record. A record file that cannot be decoded is moved to the state dir's
   * quarantine/ and logged (the live layer), so one bad file never stops every other volume.
   */
  readonly list: Effect.Effect<ReadonlyArray<StageRecord>, StageStoreError>
}>()("rds-csi/node/StageStore") {}
