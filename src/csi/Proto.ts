/**
 * Loads our copy of the CSI protocol (proto/csi.proto) and hands out the grpc-js service
 * definitions of Identity, Node and Controller. The decoding options are fixed here, once, because
 * Messages.ts describes exactly the shapes they produce.
 *
 * May import: @grpc/grpc-js, @grpc/proto-loader, node:path.
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as Path from "node:path"

/** Found next to this module at run time (sources run directly under Node's type stripping). */
export const PROTO_PATH = Path.join(import.meta.dirname, "proto", "csi.proto")

/**
 * - keepCase: field names as the spec writes them (`volume_id`), so error messages and code match it.
 * - longs: String. The only int64 we read is `capacity_range.*_bytes`; as a string we can reject
 *   a value above 2^53 exactly instead of letting it round silently. (We write int64 as numbers:
 *   byte and inode counts stay far below 2^53.)
 * - enums: String, so access modes and units read as their names.
 * - defaults: true, so unset scalars are "" / false / [] / {} as proto3 means them.
 * - oneofs: true, so `access_type` says which of `mount`/`block` was sent.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true
}

interface CsiPackage {
  readonly Identity: grpc.ServiceClientConstructor
  readonly Node: grpc.ServiceClientConstructor
  readonly Controller: grpc.ServiceClientConstructor
}

/** The csi.v1 package: service definitions for the server and client constructors for tests. */
export const loadCsi = (): CsiPackage => {
  const definition = protoLoader.loadSync(PROTO_PATH, LOADER_OPTIONS)
  const root = grpc.loadPackageDefinition(definition) as unknown as { readonly csi: { readonly v1: CsiPackage } }
  return root.csi.v1
}
