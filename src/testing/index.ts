/**
 * Test layers for the node plugin, part of the package API (like Effect's `layerTest`): an
 * in-memory kernel (KernelModel) and the NvmeCli, Sysfs, Mounter and StageStore services over it.
 *
 *   const plugin = NodeVolumesLive.pipe(Layer.provideMerge(otherNodeLayers), Layer.provideMerge(serviceLayers))
 *   const test = Effect.gen(function*() { const k = yield* KernelModel; yield* k.exportSubsystem({...}); ... })
 *   it.effect("...", () => test.pipe(Effect.provide(plugin), Effect.provide(stateLayers)))
 *
 * Providing `plugin` again inside the same `stateLayers` is a plugin restart: the kernel and the
 * stage store persist, every service is rebuilt. `kernelLayers` is the one-layer shortcut.
 *
 * May import: everything under src/testing, the contracts it implements.
 */
import { Layer } from "effect"
import { KernelModel } from "./KernelModel.ts"
import * as MounterTest from "./MounterTest.ts"
import * as NvmeCliTest from "./NvmeCliTest.ts"
import * as StageStoreTest from "./StageStoreTest.ts"
import { StageStoreMemory } from "./StageStoreTest.ts"
import * as SysfsTest from "./SysfsTest.ts"

export * from "./KernelModel.ts"
export * from "./KernelTypes.ts"
export type { KernelView, MountView } from "./KernelView.ts"
export { StageStoreMemory } from "./StageStoreTest.ts"
export { MounterTest, NvmeCliTest, StageStoreTest, SysfsTest }

/** The state that outlives a plugin restart: a fresh kernel model (multipath on) and an empty stage store. */
export const stateLayers = Layer.merge(KernelModel.layer, StageStoreMemory.layer)

/** NvmeCli, Sysfs, Mounter and StageStore over the KernelModel and StageStoreMemory in context; rebuild them to simulate a restart. */
export const serviceLayers = Layer.mergeAll(NvmeCliTest.layer, SysfsTest.layer, MounterTest.layer, StageStoreTest.layer)

/** Everything at once: the four services and, for the test to drive and inspect, KernelModel and StageStoreMemory. */
export const kernelLayers = serviceLayers.pipe(Layer.provideMerge(stateLayers))
