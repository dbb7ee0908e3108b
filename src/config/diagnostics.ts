/**
 * Diagnostics switched on from the environment, for the bench only (never in the TOML: they
 * cost CPU and say nothing an operator needs).
 *
 *   TALLENNE_STAGE_CLOCK=N   time the pipeline's stages, sampling 1 call in N of each stage
 *                            (src/stage-clock.ts); unset, empty or 0: off.
 */

/** Sampling period of the stage clock; 0 when it is off. */
export function stageClockPeriod(): number {
  const n = Number(process.env.TALLENNE_STAGE_CLOCK ?? 0);
  return Number.isInteger(n) && n > 0 ? n : 0;
}
