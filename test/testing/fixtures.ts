/**
 * Shared fixtures for the kernel-model tests: one managed NQN on one portal, a volume target
 * for it, and the layer stack (real NvmeTransport and DeviceResolver over the test layers).
 */
import { Layer, Result } from "effect"
import { type VolumeTarget, volumeTarget } from "../../src/domain/Volume.ts"
import { DeviceResolver } from "../../src/nvme/DeviceResolver.ts"
import { NvmeTransport } from "../../src/nvme/NvmeTransport.ts"
import { Settings, testSettings } from "../../src/Settings.ts"
import { KernelModel, kernelLayers, type KernelOptions, serviceLayers, StageStoreMemory } from "../../src/testing/index.ts"

export const ADDR = "10.0.0.5"
export const PORT = 4420
export const NQN = "nqn.2000-02.com.mikrotik:pvc-1"
export const NQN2 = "nqn.2000-02.com.mikrotik:pvc-2"
export const GiB = 2 ** 30
export const STAGING = "/var/lib/kubelet/plugins/kubernetes.io/csi/rds.csi.srvlab.io/pvc-1/globalmount"

/** The VolumeTarget the volume context `{nqn, nvmeAddress, nvmePort}` decodes to. */
export const target = (nqn: string = NQN, extra: Record<string, string> = {}): VolumeTarget =>
  Result.getOrThrow(volumeTarget({ nqn, nvmeAddress: ADDR, nvmePort: String(PORT), ...extra }))

const nvme = Layer.mergeAll(NvmeTransport.layer, DeviceResolver.layer)

/** Fresh kernel + store, the four test services, and the real NvmeTransport/DeviceResolver over them. */
export const env = nvme.pipe(Layer.provideMerge(kernelLayers), Layer.provideMerge(Settings.layer(testSettings())))

/** The same with a model built from `options` (e.g. multipath off). */
export const envWith = (options: KernelOptions) =>
  nvme.pipe(
    Layer.provideMerge(serviceLayers),
    Layer.provideMerge(Layer.merge(KernelModel.layerWith(options), StageStoreMemory.layer)),
    Layer.provideMerge(Settings.layer(testSettings()))
  )
