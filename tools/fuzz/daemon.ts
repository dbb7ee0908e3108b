/**
 * The daemon side of a fuzz run: the real daemon (started as the tests start it, on
 * 127.0.0.1 with ephemeral ports), a UDP socket and a few TCP connections that deliver
 * fuzz inputs to it, a user agent's minimum on our side (2xx answered with ACK and BYE,
 * the daemon's BYEs answered 200, its probes of paused calls 481) so that accepted mutants
 * give their ports back, and readings of what the daemon holds: open file descriptors, RSS,
 * RTP ports, live calls.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, type Socket as TcpSocket } from 'node:net';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeConfig, randomRtpRange, startDaemon, type DaemonHandle } from '../../tests/support/daemon.js';
import { buildResponse, firstHeader, parseSipMessage, type SipMessage } from '../../src/sip/message.js';
import { StreamFramer } from '../../src/sip/framer.js';

export interface DaemonReading {
  fds: number;
  rssKiB: number;
  /**
   * The daemon's main-thread V8 heap in use plus its external (Buffer) memory, the least of
   * several readings a few hundred ms apart: live memory, with the garbage a collection
   * would free mostly left out.
   */
  liveKiB: number;
  rtpPortsInUse: number;
  activeCalls: number;
}

const TCP_CONNECTIONS = 4;

/** The config the fuzz daemon runs with: the test harness's, with limits that let the fuzz through. */
function fuzzConfig(dir: string): string {
  return makeConfig(dir, randomRtpRange(400))
    // info, not debug: the harness reads the start-up lines, and debug would log every input.
    .replace('level = "debug"', 'level = "info"')
    // One source sends every input: the per-source INVITE rate and connection cap would
    // refuse most of them before they reach the parsers.
    .replace('[sip]\n', '[sip]\ninvite_rate = "1000000/s"\ninvite_burst = 1000000\nmax_connections_per_source = 64\n')
    .replace('[rtp]\n', '[rtp]\ninactivity_timeout = "2s"\n');
}

type Send = (data: Buffer) => void;

export class DaemonProbe {
  private udp: UdpSocket | null = null;
  private readonly tcp: Array<TcpSocket | null> = Array(TCP_CONNECTIONS).fill(null);
  private readonly waiters = new Map<string, (m: SipMessage) => void>();
  private seq = 0;
  sent = { udp: 0, tcp: 0 };
  answered = new Map<number, number>();

  private constructor(readonly daemon: DaemonHandle) {}

  static async start(dir: string): Promise<DaemonProbe> {
    mkdirSync(join(dir, 'data'), { recursive: true });
    const daemon = await startDaemon({ dir, configText: fuzzConfig(dir) });
    const p = new DaemonProbe(daemon);
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1');
    await once(s, 'listening');
    s.on('message', (buf) => p.onMessage(buf, (d) => s.send(d, daemon.udpPort, '127.0.0.1'), 'UDP', s.address().port));
    p.udp = s;
    return p;
  }

  get pid(): number {
    return this.daemon.proc.pid!;
  }

  get alive(): boolean {
    return this.daemon.proc.exitCode === null && this.daemon.proc.signalCode === null;
  }

  /** Makes a fuzz message its own transaction and call: no two inputs look like retransmissions. */
  private unique(data: Buffer): Buffer {
    const n = ++this.seq;
    return Buffer.from(
      data.toString('latin1')
        .replace(/z9hG4bK/g, `z9hG4bK${n}x`)
        .replace(/^((?:call-id|i)[ \t]*:[^\r\n]*)/im, `$1-f${n}`),
      'latin1',
    );
  }

  sendUdp(data: Buffer): void {
    this.udp!.send(this.unique(data), this.daemon.udpPort, '127.0.0.1');
    this.sent.udp++;
  }

  /** Writes `pieces` (one stream, cut into reads) on one of a few long-lived connections. */
  sendTcp(pieces: readonly Buffer[], which: number): void {
    const i = which % TCP_CONNECTIONS;
    let sock = this.tcp[i];
    if (sock === null || sock === undefined || sock.destroyed) {
      const s = createConnection({ host: '127.0.0.1', port: this.daemon.tcpPort });
      const framer = new StreamFramer(1 << 20);
      s.on('data', (chunk) => {
        for (const f of framer.push(chunk).frames) if (f.kind === 'message') this.onMessage(f.data, (d) => s.write(d), 'TCP', s.localPort ?? 0);
      });
      s.on('error', () => s.destroy());
      s.on('close', () => {
        if (this.tcp[i] === s) this.tcp[i] = null;
      });
      this.tcp[i] = sock = s;
    }
    const whole = this.unique(Buffer.concat(pieces));
    let at = 0;
    for (const p of pieces) {
      sock.write(whole.subarray(at, at + p.length));
      at += p.length;
    }
    if (at < whole.length) sock.write(whole.subarray(at));
    this.sent.tcp++;
  }

  /** Responses: count them, end accepted calls at once. Requests (the daemon's BYE): 200. */
  private onMessage(buf: Buffer, send: Send, transport: 'UDP' | 'TCP', localPort: number): void {
    let m: SipMessage;
    try {
      m = parseSipMessage(buf, 1 << 20);
    } catch {
      return;
    }
    if (m.kind === 'request') {
      // This side hangs up every call it is given at once, so it has no dialog to confirm:
      // the daemon's probe of a paused call (an in-dialog OPTIONS) gets 481, as from a real peer.
      if (m.method === 'OPTIONS') send(buildResponse(m, 481, 'Call/Transaction Does Not Exist'));
      else if (m.method !== 'ACK') send(buildResponse(m, 200, 'OK'));
      return;
    }
    const callId = firstHeader(m.headers, 'call-id') ?? '';
    const cseq = firstHeader(m.headers, 'cseq') ?? '';
    this.waiters.get(callId)?.(m);
    if (m.status >= 200) this.answered.set(m.status, (this.answered.get(m.status) ?? 0) + 1);
    if (m.status >= 200 && m.status < 300 && /INVITE/i.test(cseq)) {
      const seq = Number(/^\s*(\d+)/.exec(cseq)?.[1] ?? '1');
      const request = (method: string, n: number) => Buffer.from([
        `${method} sip:srs@127.0.0.1 SIP/2.0`,
        `Via: SIP/2.0/${transport} 127.0.0.1:${localPort};branch=z9hG4bKend${++this.seq};rport`,
        'Max-Forwards: 70',
        `From: ${firstHeader(m.headers, 'from') ?? ''}`,
        `To: ${firstHeader(m.headers, 'to') ?? ''}`,
        `Call-ID: ${callId}`,
        `CSeq: ${n} ${method}`,
        'Content-Length: 0', '', '',
      ].join('\r\n'), 'latin1');
      send(request('ACK', seq));
      send(request('BYE', seq + 1));
    }
  }

  /** An OPTIONS over UDP; resolves with the status, or null when none came within `timeoutMs`. */
  async options(timeoutMs = 2000): Promise<number | null> {
    const callId = `options-${++this.seq}@127.0.0.1`;
    const port = this.udp!.address().port;
    const req = [
      `OPTIONS sip:srs@127.0.0.1:${this.daemon.udpPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKopt${this.seq};rport`,
      'Max-Forwards: 70', 'From: <sip:fuzz@127.0.0.1>;tag=opt', `To: <sip:srs@127.0.0.1:${this.daemon.udpPort}>`,
      `Call-ID: ${callId}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', '',
    ].join('\r\n');
    const answer = new Promise<number>((resolve) => this.waiters.set(callId, (m) => m.kind === 'response' && resolve(m.status)));
    this.udp!.send(Buffer.from(req, 'latin1'), this.daemon.udpPort, '127.0.0.1');
    const status = await Promise.race([answer, sleep(timeoutMs, null)]);
    this.waiters.delete(callId);
    return status;
  }

  async read(): Promise<DaemonReading> {
    const text = await (await fetch(`http://127.0.0.1:${this.daemon.httpPort}/metrics`)).text();
    const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    return {
      fds: readdirSync(`/proc/${this.pid}/fd`).length,
      rssKiB: Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? NaN),
      liveKiB: Math.round((gauge('nodejs_heap_size_used_bytes') + gauge('nodejs_external_memory_bytes')) / 1024),
      rtpPortsInUse: gauge('tallenne_rtp_ports_in_use'),
      activeCalls: gauge('tallenne_active_calls'),
    };
  }

  /**
   * Waits until the calls the mutants opened have ended (BYE, no ACK, or no RTP), then reads
   * the daemon a few more times: `liveKiB` is the least of those readings.
   */
  async settle(timeoutMs: number): Promise<DaemonReading> {
    const end = Date.now() + timeoutMs;
    let r = await this.read();
    while (!(r.activeCalls === 0 && r.rtpPortsInUse === 0) && Date.now() <= end) {
      await sleep(250);
      r = await this.read();
    }
    let live = r.liveKiB;
    for (let k = 0; k < 8; k++) {
      await sleep(400);
      live = Math.min(live, (await this.read()).liveKiB);
    }
    return { ...r, liveKiB: live };
  }

  async stop(): Promise<void> {
    for (const s of this.tcp) s?.destroy();
    this.udp?.close();
    this.udp = null;
    await this.daemon.kill();
  }
}
