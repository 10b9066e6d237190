/**
 * After a stale-mount recovery the host's paths reach the new device, but a container started
 * with private mount propagation (the CRI default) still holds its copy of the old mount: its
 * application reads and writes a dead file system (EIO) while the host looks healthy. This
 * module finds such consumers — mounts of a superseded device in any other mount namespace —
 * and names their pods, so the plugin can say so (VolumeCondition, a Warning on each Pod) and,
 * when asked to, restart them. A container with `mountPropagation: HostToContainer` (rslave)
 * receives the host's unmount and re-bind, and is never reported.
 *
 * May import: effect, kube (EventPoster and PodRestarter contracts), mount, node.
 */
import { Effect } from "effect"
import { type EventPoster, podNeedsRestartText } from "../kube/EventPoster.ts"
import type { PodRestarter } from "../kube/PodRestarter.ts"
import { Mounter } from "../mount/Mounter.ts"
import { type StageRecord, StageStore } from "./StageStore.ts"

/** The pod UID in a kubelet target path (/var/lib/kubelet/pods/<uid>/volumes/…). */
export const podUidOfTarget = (path: string): string | undefined =>
  /\/pods\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[^/]+)\/volumes\//.exec(path)?.[1]

export interface StaleConsumers {
  /** Pods (by UID) that still hold an old mount of the volume, sorted. */
  readonly pods: ReadonlyArray<string>
  /** Processes seen holding one, for logs: `pid <n> at <mount point> (<dev_t>)`. */
  readonly holders: ReadonlyArray<string>
}

/**
 * Who still holds a superseded device of `record`. When nobody does any more, the record stops
 * watching (saved). A process whose pod cannot be told from its cgroup counts for every pod the
 * volume is published to.
 */
export const staleConsumers = Effect.fn("StaleConsumers.find")(function*(record: StageRecord) {
  const superseded = record.supersededDevTs ?? []
  if (superseded.length === 0) return { pods: [], holders: [] } satisfies StaleConsumers
  const found = yield* (yield* Mounter).foreignMounts(new Set(superseded))
  if (found.length === 0) {
    const { supersededDevTs: _, ...rest } = record
    yield* (yield* StageStore).put(rest)
    return { pods: [], holders: [] } satisfies StaleConsumers
  }
  const published = record.publishedTargets.flatMap((t) => podUidOfTarget(t.path) ?? [])
  const pods = new Set(found.flatMap((f) => f.podUid !== undefined ? [f.podUid] : published))
  return {
    pods: [...pods].sort(),
    holders: found.map((f) => `pid ${f.pid} at ${f.mountPoint} (${f.devT})`)
  } satisfies StaleConsumers
})

/** The VolumeCondition message while consumers hold the old mount. */
export const restartMessage = (c: StaleConsumers, device: string): string =>
  `recovered onto ${device}, but pod(s) ${c.pods.join(", ")} still hold the old mount (${c.holders.join("; ")}): ` +
  "restart the pod to get the recovered volume (or use mountPropagation: HostToContainer)"

/**
 * The health monitor's check after a recovery: do containers still hold the old mount? Each
 * such pod gets one Warning event (and, when `restarter` is given — --restart-pods-on-recovery —
 * is deleted so its controller re-creates it), once per recovery; the result is the condition's
 * message until no mount namespace holds the old device any more (undefined then).
 */
export const oldMountTeller = (events: EventPoster["Service"], restarter: PodRestarter["Service"] | undefined) => {
  const told = new Map<string, Set<string>>()
  // Untraced: called for every volume on every pass, and nearly always answers at once (no
  // superseded device); staleConsumers, which does the work when there is one, keeps its span.
  return Effect.fnUntraced(function*(record: StageRecord) {
    if ((record.supersededDevTs ?? []).length === 0) {
      told.delete(record.volumeId)
      return undefined
    }
    const consumers = yield* staleConsumers(record).pipe(
      Effect.catch((e) => Effect.as(Effect.logWarning(`cannot look for containers holding the old mount: ${e.message}`), undefined))
    )
    if (consumers === undefined || consumers.pods.length === 0) return undefined
    const device = `/dev/${record.device.name} (${record.device.devT})`
    const seen = told.get(record.volumeId) ?? new Set<string>()
    told.set(record.volumeId, seen)
    for (const pod of consumers.pods) {
      if (seen.has(pod)) continue
      seen.add(pod)
      yield* events.postPodNeedsRestart(pod, record.volumeId, podNeedsRestartText(device))
      yield* Effect.logWarning(`pod ${pod} still holds the old mount of the recovered volume (${consumers.holders.join("; ")})`)
      if (restarter !== undefined) {
        const outcome = yield* restarter.restart(pod, `volume ${record.volumeId} recovered onto ${device}`)
        yield* Effect.logInfo(`restart of pod ${pod}: ${outcome._tag}`)
      }
    }
    return restartMessage(consumers, device)
  })
}
