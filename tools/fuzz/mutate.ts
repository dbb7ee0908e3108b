/**
 * Format-blind mutations, the last step after a format's own structure-aware ones: bit and
 * byte flips, interesting values, cuts, duplicated and spliced chunks, and inserted runs.
 */
import type { Rng } from './rng.js';

/** Values that tend to sit on a boundary of some length or count field. */
const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xff, 0x0d, 0x0a, 0x20, 0x3a, 0x3b, 0x3c, 0x3e, 0x22, 0x2d, 0x26];

export function mutateBytes(rng: Rng, input: Buffer, rounds = rng.range(1, 4)): Buffer {
  let b = Buffer.from(input);
  for (let r = 0; r < rounds; r++) {
    const at = b.length === 0 ? 0 : rng.int(b.length);
    switch (rng.int(9)) {
      case 0: // flip one bit
        if (b.length > 0) b[at] = b[at]! ^ (1 << rng.int(8));
        break;
      case 1: // a random byte
        if (b.length > 0) b[at] = rng.int(256);
        break;
      case 2: // an interesting byte
        if (b.length > 0) b[at] = rng.pick(INTERESTING);
        break;
      case 3: // cut the tail
        b = b.subarray(0, at);
        break;
      case 4: { // delete a chunk
        const n = rng.size(Math.max(0, b.length - at));
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        break;
      }
      case 5: { // duplicate a chunk in place
        const n = rng.size(Math.max(0, b.length - at));
        b = Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
        break;
      }
      case 6: { // insert random bytes
        b = Buffer.concat([b.subarray(0, at), rng.bytes(rng.size(64)), b.subarray(at)]);
        break;
      }
      case 7: { // insert a long run of one byte
        const run = Buffer.alloc(rng.chance(0.8) ? rng.range(10, 500) : rng.range(5000, 70_000), rng.pick(INTERESTING.concat([0x41])));
        b = Buffer.concat([b.subarray(0, at), run, b.subarray(at)]);
        break;
      }
      default: { // move a chunk elsewhere
        const n = rng.size(Math.max(0, b.length - at));
        const chunk = b.subarray(at, at + n);
        const rest = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
        const to = rest.length === 0 ? 0 : rng.int(rest.length);
        b = Buffer.concat([rest.subarray(0, to), chunk, rest.subarray(to)]);
      }
    }
  }
  return b;
}

/** Text lines, split keeping each line's end (CRLF, LF or none) for a faithful re-join. */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Line-level mutations: drop, duplicate, swap, fold, change the line end, repeat many times. */
export function mutateLines(rng: Rng, lines: string[]): string[] {
  const out = [...lines];
  if (out.length === 0) return out;
  const i = rng.int(out.length);
  const line = out[i]!;
  switch (rng.int(8)) {
    case 0:
      out.splice(i, 1);
      break;
    case 1:
      out.splice(i, 0, line);
      break;
    case 2: {
      const j = rng.int(out.length);
      out[i] = out[j]!;
      out[j] = line;
      break;
    }
    case 3: // fold the line at a space (RFC 3261 §7.3.1 / RFC 5322 continuation)
      out[i] = line.replace(/ /, rng.pick(['\r\n ', '\r\n\t', '\n ', '\r\n  \r\n ']));
      break;
    case 4: // another line end
      out[i] = line.replace(/\r?\n$/, rng.pick(['\n', '\r', '\r\r\n', '', '\r\n\r\n', '\n\r']));
      break;
    case 5: // repeated many times
      out.splice(i, 0, ...Array<string>(rng.chance(0.8) ? rng.range(2, 20) : rng.range(100, 600)).fill(line));
      break;
    case 6: // made huge
      out[i] = line.replace(/(\r?\n)?$/, `${'x'.repeat(rng.chance(0.8) ? rng.range(100, 2000) : rng.range(8000, 70_000))}$1`);
      break;
    default: // cut in the middle
      out[i] = line.slice(0, rng.int(line.length + 1));
  }
  return out;
}

/** Replaces a number found in `text` with a boundary value. */
export function mutateNumber(rng: Rng, text: string): string {
  const numbers = [...text.matchAll(/\d+/g)];
  if (numbers.length === 0) return text;
  const m = rng.pick(numbers);
  const value = rng.pick(['0', '-1', '1', '65535', '65536', '4294967295', '4294967296', '99999999999999999999', '2147483648', '1e9', 'NaN', '']);
  return text.slice(0, m.index) + value + text.slice(m.index! + m[0].length);
}
