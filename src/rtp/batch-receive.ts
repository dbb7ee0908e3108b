/**
 * Batched reading of the RTP sockets (`[rtp] receive`), through the native addon in
 * native/udp-batch: every ready socket is drained with recvmmsg(2) into one arena, and the
 * packets come here in one call per batch instead of one event per datagram. The sockets stay
 * Node's dgram sockets (PortAllocator binds, sends from and closes them); between `read()`
 * and the stop it returns, their reading is the addon's and Node's own reading is stopped.
 *
 * A handler gets each datagram as a view into the arena, valid only for the call: what it
 * keeps it copies (the spool append does). Its arrival time is the kernel's receive
 * timestamp, so a packet that waited for the batch keeps its own time (jitter is measured
 * on it). Wake-ups are at least 40 ms apart: one takes about two packets of every stream. A datagram
 * larger than a slot is cut short by the kernel; it is handed over flagged `truncated`, for
 * the receiver to drop and count.
 */
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type dgram from 'node:dgram';
import { TallenneError } from '../errors.js';
import type { Logger } from '../log.js';

/**
 * One datagram: the bytes (a view, valid during the call), its source, whether it was cut
 * short, and when the kernel received it (epoch ms on the performance clock, as the
 * receiver's own clock reads).
 */
export type DatagramHandler = (msg: Buffer, address: string, port: number, truncated: boolean, at: number) => void;

interface NativeBatch {
  readonly META: number;
  readonly FLAG_TRUNCATED: number;
  open(arena: Buffer, slotBytes: number, meta: Int32Array, onBatch: (count: number) => void): unknown;
  add(reader: unknown, fd: number, token: number): void;
  remove(reader: unknown, fd: number): void;
  drain(reader: unknown, fd?: number, token?: number): void;
  batches(reader: unknown): number;
  close(reader: unknown): void;
}

/**
 * Bytes per datagram slot. RTP on a network stays under the MTU (1,500), and an Opus packet at
 * its highest rate is 1,275 bytes of payload; a larger datagram is cut here and dropped.
 */
export const SLOT_BYTES = 4096;
/** Datagrams one batch can hold (1 MiB of arena). */
export const BATCH_SLOTS = 256;

const ADDON_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'native', 'udp-batch', 'build', 'Release', 'udp_batch.node');

let loaded: { native: NativeBatch } | { error: string } | null = null;

/** The addon, or why it is not there (not built by `npm ci`, another platform). */
export function loadBatchAddon(): { native: NativeBatch } | { error: string } {
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { error: 'batched receive needs Linux (recvmmsg)' });
  if (!existsSync(ADDON_PATH)) return (loaded = { error: `the native addon is not built (${ADDON_PATH}); npm ci builds it` });
  try {
    const native = createRequire(import.meta.url)(ADDON_PATH) as NativeBatch;
    return (loaded = { native });
  } catch (err) {
    return (loaded = { error: `the native addon did not load: ${(err as Error).message}` });
  }
}

/** The libuv handle under a dgram socket: its descriptor, and Node's reading to stop and start. */
interface UdpHandle {
  readonly fd: number;
  recvStart(): number;
  recvStop(): number;
}

/**
 * Node keeps a socket's handle under an internal symbol (the public `_handle` getter is
 * deprecated). Reading it is the one place this module depends on Node's internals; a Node
 * where it is missing makes `read` throw, and the daemon refuses to start in "batched" mode.
 */
function handleOf(socket: dgram.Socket): UdpHandle {
  const sym = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state = sym ? (socket as unknown as Record<symbol, { handle?: UdpHandle } | undefined>)[sym] : undefined;
  const handle = state?.handle;
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0 || typeof handle.recvStop !== 'function') {
    throw new TallenneError('TALLENNE_BATCH_RECEIVE', 'batched receive: the socket has no readable descriptor (not bound, or closed)');
  }
  return handle;
}

const IPV4_STRINGS: string[] = Array.from({ length: 256 }, (_, i) => String(i));

export class BatchReceiver {
  private readonly arena = Buffer.allocUnsafeSlow(SLOT_BYTES * BATCH_SLOTS);
  private readonly meta: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly reader: unknown;
  private readonly handlers: Array<DatagramHandler | undefined> = [];
  /** Per token: the last source seen and its string, so a leg's one peer is not formatted per packet. */
  private lastAddr: Int32Array = new Int32Array(0);
  private lastAddrText: string[] = [];
  private readonly free: number[] = [];
  /** The sockets read here now, with their descriptors and tokens (for a drain of one). */
  private readonly reading = new Map<dgram.Socket, { fd: number; token: number }>();
  private closed = false;
  private readonly metaWords: number;
  private readonly truncatedFlag: number;

  constructor(private readonly native: NativeBatch) {
    this.metaWords = native.META;
    this.truncatedFlag = native.FLAG_TRUNCATED;
    this.meta = new Int32Array(this.metaWords * BATCH_SLOTS);
    this.bytes = new Uint8Array(this.meta.buffer);
    this.reader = native.open(this.arena, SLOT_BYTES, this.meta, (n) => this.dispatch(n));
  }

  /** Batches handed over so far (packets ÷ batches is the datagrams per wake-up). */
  get batches(): number {
    return this.closed ? 0 : this.native.batches(this.reader);
  }

  /**
   * Reads `socket` here from now on, handing its datagrams to `handler`; returns the stop,
   * which gives the reading back to Node (its 'message' events). Call the stop before the
   * socket is closed.
   */
  read(socket: dgram.Socket, handler: DatagramHandler): () => void {
    if (this.closed) throw new TallenneError('TALLENNE_BATCH_RECEIVE', 'batched receive is closed');
    const handle = handleOf(socket);
    const fd = handle.fd;
    const token = this.free.pop() ?? this.handlers.length;
    this.handlers[token] = handler;
    this.ensureAddrRoom(token);
    // A token used before keeps no source of its last socket.
    this.lastAddrText[token] = '';
    handle.recvStop();
    try {
      this.native.add(this.reader, fd, token);
    } catch (err) {
      this.handlers[token] = undefined;
      this.free.push(token);
      handle.recvStart();
      throw err;
    }
    const entry = { fd, token };
    this.reading.set(socket, entry);
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      // A later read of the same socket has its own entry, which this stop must not drop.
      if (this.reading.get(socket) === entry) this.reading.delete(socket);
      if (!this.closed) this.native.remove(this.reader, fd);
      this.handlers[token] = undefined;
      this.free.push(token);
      // Node reads the socket again (a late packet then meets no listener and is dropped).
      try {
        handle.recvStart();
      } catch {
        // closed meanwhile
      }
    };
  }

  /**
   * Hands over every datagram waiting now, without waiting for the gap between wake-ups (up to
   * 40 ms): of `socket` alone when one is given (a socket not read here has none to give), else
   * of every socket. Called before the signalling changes a leg, so packets that came before
   * the change meet the state they were sent for; one leg's drain leaves the other sockets to
   * their next wake-up, so many hang-ups together do not bring the wake-ups closer. A no-op
   * inside a handler: that batch is taking them.
   */
  drainNow(socket?: dgram.Socket): void {
    if (this.closed) return;
    if (!socket) {
      this.native.drain(this.reader);
      return;
    }
    const r = this.reading.get(socket);
    if (r) this.native.drain(this.reader, r.fd, r.token);
  }

  /** Stops watching every socket (the daemon's shutdown). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.native.close(this.reader);
  }

  private ensureAddrRoom(token: number): void {
    if (this.lastAddr.length >= (token + 1) * 4) return;
    const grown = new Int32Array(Math.max(64, (token + 1) * 8));
    grown.set(this.lastAddr);
    this.lastAddr = grown;
  }

  private dispatch(count: number): void {
    const meta = this.meta;
    const w = this.metaWords;
    // Each packet's age (µs since the kernel received it) against one reading of our clock.
    const now = performance.timeOrigin + performance.now();
    // A handler that throws does not cost the rest of the batch: the first error is thrown
    // once every packet was handed over (Node's own path throws per datagram).
    let failed: { error: unknown } | null = null;
    for (let i = 0; i < count; i++) {
      const m = i * w;
      const token = meta[m]!;
      const handler = this.handlers[token];
      if (!handler) continue;
      const offset = meta[m + 1]!;
      const length = meta[m + 2]!;
      const flags = meta[m + 3]!;
      try {
        handler(this.arena.subarray(offset, offset + length), this.sourceOf(token, m, flags & 0xff), meta[m + 4]!, (flags & this.truncatedFlag) !== 0, now - meta[m + 9]! / 1000);
      } catch (error) {
        failed ??= { error };
      }
    }
    if (failed) throw failed.error;
  }

  /**
   * The source address as text, formatted only when it differs from the token's last one.
   * The addon leaves the unused address words of an IPv4 source at 0, so one comparison of the
   * four words serves both families (a socket's family never changes).
   */
  private sourceOf(token: number, m: number, family: number): string {
    const meta = this.meta;
    const last = this.lastAddr;
    const a = token * 4;
    const w0 = meta[m + 5]!;
    const w1 = meta[m + 6]!;
    const w2 = meta[m + 7]!;
    const w3 = meta[m + 8]!;
    const known = this.lastAddrText[token]!;
    if (known !== '' && last[a] === w0 && last[a + 1] === w1 && last[a + 2] === w2 && last[a + 3] === w3) return known;
    const b = this.bytes;
    const o = (m + 5) * 4;
    const text = family === 4 ? `${IPV4_STRINGS[b[o]!]}.${IPV4_STRINGS[b[o + 1]!]}.${IPV4_STRINGS[b[o + 2]!]}.${IPV4_STRINGS[b[o + 3]!]}` : ipv6Text(b, o);
    last[a] = w0;
    last[a + 1] = w1;
    last[a + 2] = w2;
    last[a + 3] = w3;
    this.lastAddrText[token] = text;
    return text;
  }
}

/** An IPv6 address as Node writes it in a datagram's source (RFC 5952: lower case, the longest run of zero groups as ::, IPv4-mapped as ::ffff:a.b.c.d). */
export function ipv6Text(b: Uint8Array, o: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[o + 2 * i]! << 8) | b[o + 2 * i + 1]!);
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `::ffff:${b[o + 12]}.${b[o + 13]}.${b[o + 14]}.${b[o + 15]}`;
  }
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (xs: number[]): string => xs.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/**
 * The daemon's batched receive for `rtp.receive`: "node" → null; "batched" → the receiver, or
 * TALLENNE_BATCH_RECEIVE when the addon is not there; "auto" → the receiver, or null with a
 * warning saying why.
 */
export function openBatchReceive(mode: 'auto' | 'batched' | 'node', log?: Logger): BatchReceiver | null {
  if (mode === 'node') {
    log?.info('rtp sockets are read by Node, one datagram at a time (rtp.receive = "node")');
    return null;
  }
  const addon = loadBatchAddon();
  if ('error' in addon) {
    if (mode === 'batched') throw new TallenneError('TALLENNE_BATCH_RECEIVE', `rtp.receive = "batched": ${addon.error}`);
    log?.warn({ reason: addon.error }, 'rtp sockets are read by Node, one datagram at a time: batched receive is not available');
    return null;
  }
  log?.info('rtp sockets are read in batches (recvmmsg)');
  return new BatchReceiver(addon.native);
}
