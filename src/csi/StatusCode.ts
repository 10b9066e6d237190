/**
 * The gRPC status codes (grpc/doc/statuscodes.md), with their names: the CSI edge's own copy,
 * so that mapping failures to codes needs no gRPC library.
 *
 * May import: nothing.
 */
export const status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16
} as const

export type status = (typeof status)[keyof typeof status]

const names: ReadonlyMap<number, string> = new Map(Object.entries(status).map(([name, code]) => [code, name]))

/** `NOT_FOUND` for 5; the number itself for a code outside the table. */
export const statusName = (code: number): string => names.get(code) ?? String(code)
