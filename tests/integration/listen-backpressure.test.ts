/**
 * A live listener that never reads, over a real socket, against the API's listen route and
 * the real encoder pool: once the socket takes no more, the response holds the pages, the
 * worker gets no acknowledgements, and it cuts the listen off (`too_slow`) when a window of
 * bytes waits. The route then closes the connection and counts the end; what the main
 * thread held for the listener never passed the window.
 *
 * A real-time listen at 24 kbit/s would take many minutes to fill the kernel's socket
 * buffers on loopback (several MB), so the call here is a long closed spool encoded at the
 * highest bitrate as fast as the worker goes: the same route, pool and worker, in seconds.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { startApiFixture, type ApiFixture } from '../support/api-fixture.js';
import { writeSpoolFixture } from '../support/spool-fixture.js';
import { tempDir } from '../support/cleanup.js';
import { EncoderPool, type ListenSink } from '../../src/encoder/pool.js';
import { LISTEN_WINDOW_BYTES, type ListenEnd } from '../../src/encoder/listen-stream.js';
import { LiveCalls } from '../../src/calls/live.js';
import type { CallSession } from '../../src/calls/session.js';

const CALL = '01KLISTENSLOW0000000000000';

let fx: ApiFixture;
let pool: EncoderPool;
let port: number;
/** What the main thread holds for the listener: pages come from the worker, not yet passed on by the response. */
let held = 0;
let mostHeld = 0;
let ended!: Promise<ListenEnd>;

beforeAll(async () => {
  const dir = tempDir('listen-slow');
  const spool = join(dir, `${CALL}.spool`);
  const answeredAt = Date.now() - 240_000;
  await writeSpoolFixture({
    path: spool,
    answeredAt,
    durationMs: 240_000,
    legs: [
      { index: 0, channel: 0, codec: 'PCMU', toneHz: 440 },
      { index: 1, channel: 1, codec: 'PCMA', toneHz: 1000 },
    ],
  });
  pool = new EncoderPool({ workers: 1 });
  // Bertta's call (helpdesk), in progress as far as the route can tell.
  const session = { id: CALL, live: true, details: { agentId: 'bertta', team: 'helpdesk', answeredAt } } as unknown as CallSession;
  const calls = new LiveCalls({ liveSessions: () => [session][Symbol.iterator](), on: () => undefined });
  let endedWith!: (e: ListenEnd) => void;
  ended = new Promise((r) => (endedWith = r));
  fx = await startApiFixture({
    live: {
      calls,
      listen: {
        open: async (id, _fromMs, sink: ListenSink) =>
          pool.listen(id, { spoolPath: spool, fromMs: answeredAt, complexity: 0, bitrate: 510_000, maskDtmf: false }, {
            page: (page, sent) => {
              held += page.length;
              mostHeld = Math.max(mostHeld, held);
              sink.page(page, () => {
                held -= page.length;
                sent();
              });
            },
            end: (e) => {
              sink.end(e);
              endedWith(e);
            },
          }),
      },
    },
  });
  await fx.app.listen({ port: 0, host: '127.0.0.1' });
  port = (fx.app.server.address() as AddressInfo).port;
}, 60_000);

afterAll(async () => {
  await pool?.destroy();
  await fx?.close();
});

async function metric(name: string): Promise<number> {
  const text = await fx.deps.metrics.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

describe('a live listener that never reads', () => {
  it('is cut off by its worker once a window waits, the connection closed and counted, holding no more than the window', async () => {
    const socket = connect(port, '127.0.0.1');
    // Asks, then never reads a byte while the listen runs.
    socket.pause();
    socket.write(`GET /api/v1/calls/${CALL}/listen?reason=coaching HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${fx.tokens.supervisor}\r\n\r\n`);
    const end = await ended;
    expect(end.reason).toBe('too_slow');
    expect(end.thread).toBeGreaterThan(0);
    // The socket took what it could (the kernel's buffers), then the window filled.
    expect(end.bytes).toBeGreaterThan(LISTEN_WINDOW_BYTES);
    expect(mostHeld).toBeLessThanOrEqual(LISTEN_WINDOW_BYTES);
    expect(await metric('tallenne_listens_ended_total{reason="too_slow"}')).toBe(1);
    expect(await metric('tallenne_listens_active')).toBe(0);
    expect(pool.listening).toBe(0);

    // Reading now: the answer began as a stream and was cut short, not ended as a whole call.
    let head = '';
    let tail = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      if (head.length < 4096) head += c.slice(0, 4096);
      tail = (tail + c).slice(-16);
    });
    socket.resume();
    await new Promise<void>((resolve) => socket.on('close', () => resolve()));
    expect(head.startsWith('HTTP/1.1 200')).toBe(true);
    expect(head).toContain('audio/ogg');
    // No last chunk: the listener can tell a cut-off from the call's end.
    expect(tail.endsWith('0\r\n\r\n')).toBe(false);
  }, 60_000);
});
