/**
 * Mutations of SIP messages for robustness tests, from a seeded generator so that a failure
 * can be replayed: truncation, byte flips (anywhere, or in the body only), a huge header,
 * a flood of headers, XML nested far too deep, and an entity-expansion ("billion laughs")
 * DOCTYPE in the metadata. Each mutation keeps its name for the failure message.
 */
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { buildResponse, firstHeader, parseSipMessage, type SipMessage } from '../../src/sip/message.js';

/** mulberry32: a small deterministic PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Mutation {
  readonly name: string;
  readonly data: Buffer;
  /** The mutation must be refused with this status (when the message is still parseable). */
  readonly expectStatus?: number;
}

const SEP = Buffer.from('\r\n\r\n');

/** Re-joins head and body with a Content-Length that matches the new body. */
function withBody(msg: Buffer, body: Buffer): Buffer {
  const split = msg.indexOf(SEP);
  const head = msg.toString('latin1', 0, split).replace(/^(content-length|l)[ \t]*:.*$/im, `Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(head, 'latin1'), SEP, body]);
}

function insertHeader(msg: Buffer, line: string): Buffer {
  const firstEol = msg.indexOf('\r\n');
  return Buffer.concat([msg.subarray(0, firstEol + 2), Buffer.from(`${line}\r\n`, 'latin1'), msg.subarray(firstEol + 2)]);
}

/** Inserts `text` into the metadata XML right after its root start tag (or its declaration). */
function intoMetadata(msg: Buffer, text: (rootTag: string) => { before?: string; inside?: string }): Buffer | null {
  const split = msg.indexOf(SEP);
  const body = msg.toString('utf8', split + 4);
  const root = /<([a-z]+:)?(recording|recording_metadata)\b[^>]*>/i.exec(body);
  if (!root) return null;
  const add = text(root[0]);
  const at = root.index;
  const out = body.slice(0, at) + (add.before ?? '') + root[0] + (add.inside ?? '') + body.slice(at + root[0].length);
  return withBody(msg, Buffer.from(out, 'utf8'));
}

/** `maxMessageBytes` is the daemon's [sip] max_message_bytes: one mutant pads the body past it. */
export function mutationsOf(msg: Buffer, seed: number, maxMessageBytes: number): Mutation[] {
  const rnd = prng(seed);
  const out: Mutation[] = [];
  const split = msg.indexOf(SEP);
  for (const frac of [0.3, 0.7, 0.98]) {
    const cut = Math.max(1, Math.floor(frac * msg.length));
    out.push({ name: `truncated at ${cut}`, data: msg.subarray(0, cut) });
  }
  for (let k = 0; k < 2; k++) {
    const m = Buffer.from(msg);
    for (let i = 0; i < 8; i++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
    out.push({ name: `8 bytes flipped (#${k})`, data: m });
  }
  {
    const body = Buffer.from(msg.subarray(split + 4));
    for (let i = 0; i < 6; i++) body[Math.floor(rnd() * body.length)] = Math.floor(rnd() * 256);
    out.push({ name: 'body bytes flipped', data: withBody(msg, body) });
  }
  out.push({ name: 'huge header', data: insertHeader(msg, `X-Huge: ${'a'.repeat(20_000)}`) });
  out.push({ name: 'many headers', data: insertHeader(msg, Array.from({ length: 400 }, (_, i) => `X-H${i}: v`).join('\r\n')) });
  const padded = Buffer.concat([msg.subarray(split + 4), Buffer.alloc(maxMessageBytes, 0x20)]);
  out.push({ name: 'body over the size limit', data: withBody(msg, padded), expectStatus: 513 });
  const deep = intoMetadata(msg, () => ({ inside: '<x>'.repeat(1000) + '</x>'.repeat(1000) }));
  if (deep) out.push({ name: 'XML nested 1000 deep', data: deep, expectStatus: 400 });
  const laughs = intoMetadata(msg, () => ({
    before: '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
      + '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">'
      + '<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>',
    inside: '<extensiondata>&lol4;</extensiondata>',
  }));
  if (laughs) out.push({ name: 'billion laughs', data: laughs, expectStatus: 400 });
  return out;
}

export interface Outcome {
  readonly mutation: Mutation;
  /** Final statuses of the INVITE (none when the daemon silently dropped it). */
  readonly statuses: number[];
}

/**
 * Sends one mutated INVITE from its own socket, collects responses for `waitMs`, and ends
 * any dialog it opened (ACK, then BYE), so that accepted mutants do not hold ports.
 */
export async function sendMutation(mutation: Mutation, serverPort: number, waitMs: number): Promise<Outcome> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const statuses: number[] = [];
  const oks: SipMessage[] = [];
  // The daemon repeats a final error answer until it is ACKed (RFC 3261 Timer G), and this
  // client never ACKs one; an earlier mutant's socket may have had this port, so only answers
  // to this mutant's own Call-ID count (where the mutation left one to read).
  const head = mutation.data.toString('latin1').split('\r\n\r\n')[0]!;
  const callId = /^(?:call-id|i)[ \t]*:[ \t]*(\S+)/im.exec(head)?.[1];
  s.on('message', (buf) => {
    let m: SipMessage;
    try {
      m = parseSipMessage(buf);
    } catch {
      return;
    }
    if (callId !== undefined && firstHeader(m.headers, 'call-id') !== callId) return;
    if (m.kind === 'request') {
      if (m.method === 'BYE') s.send(buildResponse(m, 200, 'OK'), serverPort, '127.0.0.1');
      return;
    }
    if (m.status < 200 || !/INVITE/.test(firstHeader(m.headers, 'cseq') ?? '')) return;
    if (!statuses.includes(m.status)) statuses.push(m.status);
    if (m.status < 300 && !oks.some((o) => firstHeader(o.headers, 'call-id') === firstHeader(m.headers, 'call-id'))) oks.push(m);
  });
  s.send(mutation.data, serverPort, '127.0.0.1');
  // Like a UAC over UDP (Timer A), repeat the request while no final answer came: a burst of
  // large datagrams can overflow a socket buffer even on loopback.
  for (let t = 500; t < waitMs; t += 500) {
    await new Promise((r) => setTimeout(r, 500));
    if (statuses.length === 0) s.send(mutation.data, serverPort, '127.0.0.1');
  }
  await new Promise((r) => setTimeout(r, waitMs % 500));
  for (const ok of oks) {
    const h = (n: string) => firstHeader(ok.headers, n) ?? '';
    const seq = Number(/^\s*(\d+)/.exec(h('cseq'))?.[1] ?? '1');
    const common = (method: string, cseq: number) => [
      `${method} sip:tallenne@127.0.0.1:${serverPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${s.address().port};branch=z9hG4bK${randomBytes(6).toString('hex')};rport`,
      'Max-Forwards: 70',
      `From: ${h('from')}`,
      `To: ${h('to')}`,
      `Call-ID: ${h('call-id')}`,
      `CSeq: ${cseq} ${method}`,
      'Content-Length: 0', '', '',
    ].join('\r\n');
    s.send(Buffer.from(common('ACK', seq), 'latin1'), serverPort, '127.0.0.1');
    s.send(Buffer.from(common('BYE', seq + 1), 'latin1'), serverPort, '127.0.0.1');
  }
  if (oks.length > 0) await new Promise((r) => setTimeout(r, 300));
  s.close();
  return { mutation, statuses };
}
