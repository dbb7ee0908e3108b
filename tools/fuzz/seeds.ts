/**
 * The corpus the mutators start from, read once from the shared SIPREC samples
 * (../shared/siprec-samples/, never copied into the repository): whole SIP messages, their
 * multipart bodies, SDP offers (also turned into SRTP offers with a=crypto lines) and
 * rs-metadata documents. `.body` samples are wrapped in a fixed SIPREC INVITE, so that the
 * corpus, and with it every input of a seeded run, is the same bytes on every run.
 */
import { BODY_BOUNDARIES, readSample, sampleNames } from '../../tests/unit/sip/samples.js';
import { toSrtpOffer } from '../../tests/support/srtp-offer.js';
import { SRTP_SUITE_NAMES, SRTP_SUITES } from '../../src/rtp/srtp-suites.js';
import { firstHeader, parseSipMessage } from '../../src/sip/message.js';
import { parseMultipart } from '../../src/sip/multipart.js';
import { Rng } from './rng.js';

export interface MultipartSeed {
  readonly contentType: string;
  readonly body: Buffer;
}

export interface Corpus {
  /** Whole SIP messages (requests), CRLF kept. */
  readonly sip: readonly Buffer[];
  readonly multipart: readonly MultipartSeed[];
  /** SDP offers as text, plain and with SRTP crypto lines. */
  readonly sdp: readonly string[];
  readonly xml: readonly string[];
  /** RTP payload types the samples offer, for RTP seeds. */
  readonly payloadTypes: readonly number[];
}

function wrapBody(name: string, body: Buffer): Buffer {
  const head = [
    'INVITE sip:srs@127.0.0.1:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKfuzzseed;rport',
    'Max-Forwards: 70',
    'From: <sip:src@127.0.0.1>;tag=fuzzfrom',
    'To: <sip:srs@127.0.0.1:5060>',
    `Call-ID: ${name}@127.0.0.1`,
    'CSeq: 1 INVITE',
    'Contact: <sip:src@127.0.0.1:5062>;+sip.src',
    'Require: siprec',
    `Content-Type: multipart/mixed;boundary=${BODY_BOUNDARIES[name]}`,
    `Content-Length: ${body.length}`,
  ].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'latin1'), body]);
}

/** a=crypto lines of every supported suite, in the forms RFC 4568 and RFC 7714 write them. */
function cryptoLines(rng: Rng): string[] {
  return SRTP_SUITE_NAMES.map((suite, i) => {
    const s = SRTP_SUITES[suite];
    const key = rng.bytes(s.keyBytes + s.saltBytes).toString('base64');
    const extras = ['', '|2^31', '|2^20|1:4', '|1:1'][i]!;
    const params = ['', ' UNENCRYPTED_SRTCP', ' KDR=0 WSH=256', ' UNENCRYPTED_SRTP -FOO'][i]!;
    return `${i + 1} ${suite} inline:${key}${extras}${params}`;
  });
}

let cached: Corpus | undefined;

export function loadCorpus(): Corpus {
  if (cached !== undefined) return cached;
  const rng = new Rng(0x5eed);
  const sip = [
    ...sampleNames('.sip').map((n) => readSample(n)),
    ...sampleNames('.body').map((n) => wrapBody(n, readSample(n))),
  ];
  const multipart: MultipartSeed[] = [];
  const sdp: string[] = [];
  const xml = sampleNames('.xml').map((n) => readSample(n).toString('utf8'));
  for (const msg of sip) {
    // The samples are whole messages; their bodies become the corpus of the body formats.
    const m = parseSipMessage(msg);
    const contentType = firstHeader(m.headers, 'content-type') ?? '';
    if (/^multipart\//i.test(contentType)) {
      multipart.push({ contentType, body: m.body });
      let parts: ReturnType<typeof parseMultipart> = [];
      try {
        parts = parseMultipart(contentType, m.body);
      } catch {
        // A sample damaged on purpose (the BroadWorks capture) is a multipart seed only.
      }
      for (const part of parts) {
        if (part.contentType === 'application/sdp') sdp.push(part.body.toString('utf8'));
        else if (part.contentType.startsWith('application/rs-metadata')) xml.push(part.body.toString('utf8'));
      }
    } else if (/^application\/sdp/i.test(contentType)) {
      sdp.push(m.body.toString('utf8'));
    }
  }
  const plain = [...sdp];
  for (const offer of plain) {
    const lines = cryptoLines(rng);
    sdp.push(toSrtpOffer(offer, [lines, [...lines].reverse()]));
  }
  const payloadTypes = [...new Set(plain.flatMap((s) => [...s.matchAll(/^m=audio \S+ \S+ ([\d ]+)/gm)].flatMap((m) => m[1]!.trim().split(' ').map(Number))))];
  cached = { sip, multipart, sdp, xml, payloadTypes };
  return cached;
}
