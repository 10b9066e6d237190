/**
 * The seed and run count of the property tests in test/rds: RDS_PROP_SEED=<n> replays a run
 * (default: a fresh random seed each run), RDS_PROP_RUNS=<n> sets the runs per property
 * (default 500). Every failure message names the seed (effect's Arbitrary also prints a
 * `Replay:` token that holds it).
 */
const fromEnv = (name: string): number | undefined => {
  const v = process.env[name]
  return v === undefined || v === "" ? undefined : Number(v)
}

export const SEED: number = fromEnv("RDS_PROP_SEED") ?? Math.floor(Math.random() * 2 ** 31)
export const RUNS: number = fromEnv("RDS_PROP_RUNS") ?? 500
export const replay = `seed ${SEED} (RDS_PROP_SEED=${SEED} replays it)`
