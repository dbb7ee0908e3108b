/**
 * multipart/mixed bodies (RFC 2046 §5.1) mutated at their boundaries and part headers:
 * the boundary parameter (quoted, missing, too long, not found), delimiters with padding,
 * without the closing one, inside content, with LF line ends; part headers folded, without
 * a colon, very long; parts dropped, repeated past the part limit, or their contents
 * mutated as SDP or rs-metadata.
 */
import type { Rng } from '../rng.js';
import { mutateLines, splitLines } from '../mutate.js';
import type { MultipartSeed } from '../seeds.js';
import { mutateSdp } from './sdp.js';
import { mutateXml } from './xml.js';

function boundaryOf(contentType: string): string {
  return /boundary="?([^";]+)"?/i.exec(contentType)?.[1] ?? 'x';
}

function mutateContentType(rng: Rng, ct: string, boundary: string): string {
  switch (rng.int(8)) {
    case 0: return `multipart/mixed;boundary="${boundary}"`;
    case 1: return 'multipart/mixed';
    case 2: return `multipart/mixed;boundary=${'b'.repeat(71)}`;
    case 3: return `multipart/mixed; boundary="${boundary};x"; charset=utf-8`;
    case 4: return `multipart/mixed;boundary=${boundary};boundary=other`;
    case 5: return rng.pick(['multipart/', 'multipart/ mixed;boundary=x', 'multipart/related;boundary=', '/mixed', `multipart/mixed;${';'.repeat(300)}`, `multipart/mixed;boundary="${boundary}`]);
    case 6: return ct.replace(/;/g, rng.pick([' ; ', ';\t', ';;']));
    default: return ct;
  }
}

/** The parts between delimiters, as text, and the delimiter lines themselves. */
export function mutateMultipart(rng: Rng, seed: MultipartSeed): MultipartSeed {
  const boundary = boundaryOf(seed.contentType);
  const dash = `--${boundary}`;
  const text = seed.body.toString('utf8');
  const pieces = text.split(dash);
  let contentType = seed.contentType;
  for (let r = rng.range(1, 3); r > 0; r--) {
    const i = pieces.length > 1 ? rng.range(1, pieces.length - 1) : 0;
    switch (rng.int(9)) {
      case 0: // the part's content as SDP or XML, mutated
        pieces[i] = pieces[i]!.includes('v=0') ? mutateSdp(rng, pieces[i]!) : mutateXml(rng, pieces[i]!);
        break;
      case 1: // part header lines
        pieces[i] = mutateLines(rng, splitLines(pieces[i]!)).join('');
        break;
      case 2: // a header line of our own at the start of the part
        pieces[i] = pieces[i]!.replace(/^(--)?[ \t]*\r?\n/, (m) => `${m}${rng.pick(['Content-Type: application/sdp', 'Content-Type:application/rs-metadata+xml', 'Content-Type: x', 'Content-Type: ', 'Content-Disposition: recording-session', ' folded', 'NoColon', `X-Long: ${'v'.repeat(9000)}`, 'Content-Type: text/plain;charset'])}\r\n`);
        break;
      case 3: // drop the closing delimiter, or everything after a point
        pieces.splice(rng.int(pieces.length) + 1);
        break;
      case 4: // repeat a part past the limit
        pieces.splice(i, 0, ...Array<string>(rng.pick([2, 15, 16, 17, 40])).fill(pieces[i]!));
        break;
      case 5: // padding and odd line ends after delimiters
        pieces[i] = pieces[i]!.replace(/^(--)?/, (m) => m + rng.pick(['   ', '\t', 'x', '--', '\r', '']));
        break;
      case 6: // LF only
        pieces[i] = pieces[i]!.replace(/\r\n/g, '\n');
        break;
      case 7: // a boundary-like line inside the content
        pieces[i] = `${pieces[i]!}${rng.pick([`${dash}X\r\n`, `\r\n${dash.slice(0, -1)}\r\n`, `${dash}`])}`;
        break;
      default:
        contentType = mutateContentType(rng, contentType, boundary);
    }
  }
  const joiner = rng.chance(0.9) ? dash : rng.pick([`--${boundary.toUpperCase()}`, boundary, `-${dash}`]);
  return { contentType, body: Buffer.from(pieces.join(joiner), 'utf8') };
}
