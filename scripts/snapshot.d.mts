// Types of scripts/snapshot.mjs for the tests that import it (the script itself is plain JavaScript: the image's build stage runs it with Node alone).
export interface CodeCacheEntry {
  /** The built-in's id, e.g. "internal/http2/core". */
  readonly id: string
  /** Where its record (id, then data) begins and ends in the blob. */
  readonly begin: number
  readonly end: number
  /** The size of its code cache data in bytes. */
  readonly size: number
}
export interface CodeCache {
  readonly withoutCodeCache: boolean
  /** Where the code cache (its count) begins in the blob. */
  readonly start: number
  readonly entries: ReadonlyArray<CodeCacheEntry>
}
export type CodeCacheMode = "trim" | "all" | "none"
/** RDS_CSI_SNAPSHOT_CODE_CACHE's value (unset or empty: "trim"); throws naming the variable for any other. */
export declare const codeCacheMode: (value: string | undefined) => CodeCacheMode
export declare const CODE_CACHE: CodeCacheMode
export declare const BLOB_V8_FLAGS: ReadonlyArray<string>
export declare const codeCacheOf: (blob: Buffer) => CodeCache
export declare const trimCodeCache: (file: string, keep: ReadonlySet<string>) => { readonly kept: ReadonlyArray<CodeCacheEntry>; readonly dropped: ReadonlyArray<CodeCacheEntry> }
export declare const compiledBuiltins: (output: string) => Set<string>
export declare const buildSnapshot: (root: string) => Promise<void>
