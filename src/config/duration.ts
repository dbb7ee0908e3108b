/**
 * Durations are strings with units everywhere in the config: "90s", "15m", "1h",
 * "6 months", "3 years 3 months", "250ms". Calendar units (months, years) are kept apart
 * from fixed units so expiry dates land on the same day of the month.
 */
export interface Duration {
  readonly months: number;
  readonly ms: number;
  readonly text: string;
}

const UNITS: Record<string, { ms?: number; months?: number }> = {
  ms: { ms: 1 }, millisecond: { ms: 1 }, milliseconds: { ms: 1 },
  s: { ms: 1000 }, sec: { ms: 1000 }, secs: { ms: 1000 }, second: { ms: 1000 }, seconds: { ms: 1000 },
  m: { ms: 60_000 }, min: { ms: 60_000 }, mins: { ms: 60_000 }, minute: { ms: 60_000 }, minutes: { ms: 60_000 },
  h: { ms: 3_600_000 }, hour: { ms: 3_600_000 }, hours: { ms: 3_600_000 },
  d: { ms: 86_400_000 }, day: { ms: 86_400_000 }, days: { ms: 86_400_000 },
  w: { ms: 604_800_000 }, week: { ms: 604_800_000 }, weeks: { ms: 604_800_000 },
  month: { months: 1 }, months: { months: 1 }, mo: { months: 1 },
  y: { months: 12 }, year: { months: 12 }, years: { months: 12 },
};

/** Parses a duration; returns a string describing the problem when it is not one. */
export function parseDuration(text: string): Duration | string {
  const src = text.trim().toLowerCase();
  if (src.length === 0) return 'empty duration';
  const re = /(\d+(?:\.\d+)?)\s*([a-z]+)\s*/y;
  let months = 0;
  let ms = 0;
  let pos = 0;
  while (pos < src.length) {
    re.lastIndex = pos;
    const m = re.exec(src);
    if (!m) return `"${text}" is not a duration (write e.g. "90s", "15m", "6 months")`;
    const unit = UNITS[m[2]!];
    if (!unit) return `unknown unit "${m[2]}" in "${text}"`;
    const n = Number(m[1]);
    if (unit.months !== undefined) {
      if (!Number.isInteger(n)) return `months and years must be whole numbers in "${text}"`;
      months += n * unit.months;
    } else {
      ms += n * unit.ms!;
    }
    pos = re.lastIndex;
  }
  return { months, ms: Math.round(ms), text };
}

/** Adds a duration to a point in time, calendar-aware for months (clamped to month end). */
export function addDuration(fromMs: number, d: Duration): number {
  let t = fromMs;
  if (d.months !== 0) {
    const date = new Date(t);
    const day = date.getUTCDate();
    date.setUTCDate(1);
    date.setUTCMonth(date.getUTCMonth() + d.months);
    const last = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0)).getUTCDate();
    date.setUTCDate(Math.min(day, last));
    t = date.getTime();
  }
  return t + d.ms;
}

/** Approximate length in ms, for timers (a month counts as 30.44 days). */
export function durationMs(d: Duration): number {
  return d.ms + d.months * 2_629_746_000;
}
