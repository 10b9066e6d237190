/**
 * Where `rds-csi emulator` keeps its keys, config and state, and the SSH port it listens on.
 * A file of its own, importing nothing, so the command line can show them without loading the
 * emulator.
 */
export const DEFAULT_DIR = "/var/lib/rds-emulator"
export const DEFAULT_SSH_PORT = 2222
