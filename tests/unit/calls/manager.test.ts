/**
 * The call manager against real ports on loopback, without the user agent: every refusal it
 * can send is triggered once and carries its error code, status and metrics reason; an
 * answered call is reported `ended` with its spool closed, and `idle` when the last ends;
 * hang-up goes through the function given at construction.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallManager, type ManagerDeps } from '../../../src/calls/manager.js';
import { REJECTIONS, type Rejection, type RejectionCode } from '../../../src/calls/rejections.js';
import { parseConfigText } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';
import { createLogger } from '../../../src/log.js';
import { NumberHasher } from '../../../src/privacy/numbers.js';
import { PortAllocator } from '../../../src/rtp/ports.js';
import { newRtpCounters } from '../../../src/rtp/counters.js';
import type { IncomingRequest } from '../../../src/sip/user-agent.js';
import { offerSdp, rsMetadataDoc, multipart } from '../../support/rs-metadata.js';
import { toSrtpOffer } from '../../support/srtp-offer.js';
import { InviteClaims } from '../../../src/calls/invite-claims.js';
import type { RecordingIndex } from '../../../src/index/index.js';

const SDP = offerSdp(['1', '2']);

/** A SIPREC multipart body as the user agent hands it over. */
function siprecBody(sdp: string, metadata: string): { contentType: string; body: Buffer } {
  const m = multipart(sdp, metadata);
  return { contentType: m.contentType, body: Buffer.from(m.body) };
}

function request(over: Partial<IncomingRequest> = {}): IncomingRequest {
  return {
    dialogId: `call-${Math.random()}|local|remote`,
    method: 'INVITE',
    callId: 'c1@127.0.0.1',
    requestUri: 'sip:rec@127.0.0.1',
    from: { uri: 'sip:+358401234567@127.0.0.1', params: {} },
    to: { uri: 'sip:rec@127.0.0.1', params: {} },
    headers: [],
    contentType: 'application/sdp',
    body: Buffer.from(SDP),
    isSiprec: false,
    transport: 'UDP',
    localAddress: '127.0.0.1',
    ...over,
  } as IncomingRequest;
}

/** The same initial INVITE as a balancer's failover copy would carry it: only the dialog (our tag) differs. */
function copyOfOneInvite(): IncomingRequest {
  return request({ callId: 'merged@127.0.0.1', from: { uri: 'sip:src@127.0.0.1', params: { tag: 'f1' } }, headers: [{ name: 'cseq', value: '1 INVITE' }] });
}

/** The register's lease rule in memory (the LMDB and PostgreSQL ones pass one conformance suite). */
function leaseRegister(): Pick<RecordingIndex, 'claimLease' | 'releaseLease'> {
  const leases = new Map<string, string>();
  return {
    async claimLease(name, holder) {
      const cur = leases.get(name);
      if (cur !== undefined && cur !== holder) return false;
      leases.set(name, holder);
      return true;
    },
    async releaseLease(name, holder) {
      if (leases.get(name) === holder) leases.delete(name);
    },
  };
}

describe('CallManager', () => {
  let dir: string;
  let config: Config;
  let ports: PortAllocator;
  let free: number;
  let hungUp: string[];
  let manager: CallManager;
  let rejections: Rejection[];

  const make = (over: Partial<ManagerDeps> = {}): CallManager => {
    const m = new CallManager({
      config: () => config,
      log: createLogger('silent'),
      ports,
      rtpCounters: newRtpCounters(),
      store: { usage: async () => ({ freeBytes: free }) },
      hasher: NumberHasher.open(join(dir, 'hash.key')),
      spoolDir: join(dir, 'spool'),
      hangUp: (id) => hungUp.push(id),
      probe: () => undefined,
      ...over,
    });
    m.on('rejected', (r) => rejections.push(r));
    m.on('updateRejected', (r) => rejections.push(r));
    return m;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tallenne-manager-'));
    mkdirSync(join(dir, 'spool'));
    config = parseConfigText(`[storage]\ndir = "${dir}"\nmin_free = "1MiB"\n[calls]\nmax_concurrent = 1\n`, join(dir, 'tallenne.toml')).config;
    const base = 30000 + 2 * Math.floor(Math.random() * 10000);
    ports = new PortAllocator({ address: '127.0.0.1', min: base, max: base + 7 });
    free = 1e12;
    hungUp = [];
    rejections = [];
    manager = make();
  });

  afterEach(async () => {
    await manager.abort();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Code → how to make the manager send it. */
  const TRIGGERS: Record<RejectionCode, () => Promise<{ status: number }>> = {
    TALLENNE_SHUTTING_DOWN: () => {
      manager.stopAccepting();
      return manager.invite(request());
    },
    TALLENNE_CAPACITY: async () => {
      expect((await manager.invite(request())).status).toBe(200);
      return manager.invite(request());
    },
    TALLENNE_DISK_LOW: () => {
      free = 1000;
      return manager.invite(request());
    },
    TALLENNE_NO_PORTS: async () => {
      // At most four pairs in the range, two per call: calls are taken until none is left.
      config = { ...config, calls: { ...config.calls, max_concurrent: 10 } };
      for (;;) {
        const a = await manager.invite(request());
        if (a.status !== 200) return a;
      }
    },
    TALLENNE_SPOOL_UNWRITABLE: () => {
      rmSync(join(dir, 'spool'), { recursive: true });
      return manager.invite(request());
    },
    TALLENNE_NO_OFFER: () => manager.invite(request({ body: Buffer.alloc(0) })),
    TALLENNE_SRTP_REQUIRED: () => {
      config = { ...config, rtp: { ...config.rtp, srtp: 'required' } };
      return manager.invite(request());
    },
    // DTLS-SRTP: the only keying offered is a fingerprint for a DTLS handshake.
    TALLENNE_SRTP_UNSUPPORTED: () => manager.invite(request({ body: Buffer.from(toSrtpOffer(SDP, [], 'UDP/TLS/RTP/SAVP').replace(/(m=audio.*\r\n)/g, '$1a=fingerprint:sha-256 AB:CD\r\na=setup:actpass\r\n')) })),
    TALLENNE_NO_USABLE_CODEC: () => manager.invite(request({ body: Buffer.from(offerSdp(['1'], { codecs: '18' }).replace(/a=rtpmap:(0|8|101|13) .*\r\n/g, '')) })),
    TALLENNE_SIP_MALFORMED: () => manager.invite(request({ contentType: undefined })),
    TALLENNE_SDP_MALFORMED: () => manager.invite(request({ body: Buffer.from('v=0\r\nm=audio x\r\n') })),
    TALLENNE_METADATA_MALFORMED: () => manager.invite(request({ ...siprecBody(SDP, '<recording xmlns="urn:ietf:params:xml:ns:recording:1"><!DOCTYPE x></recording>') })),
    TALLENNE_UNSUPPORTED_MEDIA_TYPE: () => manager.invite(request({ contentType: 'text/plain', body: Buffer.from('hello') })),
    TALLENNE_DIALOG_NOT_FOUND: () => manager.update(request({ method: 'UPDATE', dialogId: 'no-such-dialog' })),
    // A copy of one INVITE (same Call-ID, From tag and CSeq, another branch) at two recorders sharing a register.
    TALLENNE_MERGED_REQUEST: async () => {
      const register = leaseRegister();
      const a = make({ claims: new InviteClaims(register, 'rec-a', createLogger('silent')) });
      await manager.abort();
      manager = make({ claims: new InviteClaims(register, 'rec-b', createLogger('silent')) });
      try {
        expect((await a.invite(copyOfOneInvite())).status).toBe(200);
        return await manager.invite(copyOfOneInvite());
      } finally {
        await a.abort();
      }
    },
  };

  for (const code of Object.keys(REJECTIONS) as RejectionCode[]) {
    it(`refuses with ${code}`, async () => {
      const answer = await TRIGGERS[code]();
      const last = rejections.at(-1)!;
      expect(last.code).toBe(code);
      expect(answer.status).toBe(last.status);
      expect(last.reason).toBe(REJECTIONS[code].reason);
      expect(answer.status).toBe(REJECTIONS[code].status);
    });
  }

  it('answers a SIPREC INVITE with siprec set, reports ended with the spool closed, then idle', async () => {
    const md = rsMetadataDoc({ participants: [{ id: 'c', aor: 'sip:+358401234567@x', sends: ['s1'] }, { id: 'a', aor: 'sip:1001@x', sends: ['s2'] }], streams: [{ id: 's1', label: '1' }, { id: 's2', label: '2' }] });
    const req = request({ ...siprecBody(SDP, md) });
    const answer = await manager.invite(req);
    expect([answer.status, answer.siprec]).toEqual([200, true]);
    const plain = make();
    try {
      expect((await plain.invite(request())).siprec).toBe(false);
    } finally {
      await plain.abort();
    }
    const session = [...manager.liveSessions()][0]!;
    expect(session.meta.legs.map((l) => [l.label, l.role, l.channel])).toEqual([['1', 'customer', 0], ['2', 'agent', 1]]);
    const ended = new Promise<Promise<void>>((r) => manager.once('ended', (_s, closed) => r(closed)));
    const idle = new Promise<void>((r) => manager.once('idle', () => r()));
    manager.ended(req.dialogId, 'bye');
    await (await ended);
    await idle;
    expect(existsSync(session.spool.path)).toBe(true);
    expect(ports.inUse).toBe(0);
  });

  it('a recorder sharing a register holds the INVITE\'s claim while the call lives and gives it back at its end', async () => {
    const register = leaseRegister();
    const other = make({ claims: new InviteClaims(register, 'rec-a', createLogger('silent')) });
    await manager.abort();
    manager = make({ claims: new InviteClaims(register, 'rec-b', createLogger('silent')) });
    try {
      const first = copyOfOneInvite();
      expect((await manager.invite(first)).status).toBe(200);
      // A second copy reaching this same recorder by another branch is a merged request too.
      config = { ...config, calls: { ...config.calls, max_concurrent: 2 } };
      expect((await manager.invite(copyOfOneInvite())).status).toBe(482);
      expect((await other.invite(copyOfOneInvite())).status).toBe(482);
      const ended = new Promise<void>((r) => manager.once('ended', () => r()));
      manager.ended(first.dialogId, 'bye');
      await ended;
      await new Promise((r) => setImmediate(r));
      expect((await other.invite(copyOfOneInvite())).status).toBe(200);
      // Without the shared register (one recorder) nothing is claimed.
      const alone = make();
      try {
        expect((await alone.invite(copyOfOneInvite())).status).toBe(200);
      } finally {
        await alone.abort();
      }
    } finally {
      await other.abort();
    }
  });

  it('drain hangs up the calls still live at the deadline through the hang-up it was given', async () => {
    const req = request();
    expect((await manager.invite(req)).status).toBe(200);
    await manager.drain(10);
    expect(hungUp).toEqual([req.dialogId]);
    expect(manager.activeCalls).toBe(0);
  });

  it('a metadata-only re-INVITE is answered with the current SDP, an UPDATE without one', async () => {
    const md = (mode: 'complete' | 'partial', parts: Parameters<typeof rsMetadataDoc>[0]['participants']) => rsMetadataDoc({ mode, participants: parts, streams: [{ id: 's1', label: '1' }, { id: 's2', label: '2' }] });
    const req = request({ ...siprecBody(SDP, md('complete', [{ id: 'c', aor: 'sip:+358401234567@x', sends: ['s1'] }, { id: 'a', aor: 'sip:1001@x', sends: ['s2'] }])) });
    const first = await manager.invite(req);
    const update = await manager.update(request({ dialogId: req.dialogId, method: 'UPDATE', contentType: 'application/rs-metadata+xml', body: Buffer.from(md('partial', [{ id: 'b', aor: 'sip:1002@x', sends: ['s2'] }])) }));
    expect(update).toEqual({ status: 200 });
    const reinvite = await manager.update(request({ dialogId: req.dialogId, method: 'INVITE', contentType: 'application/rs-metadata', body: Buffer.from(md('complete', [{ id: 'c', aor: 'sip:+358401234567@x', sends: ['s1'] }, { id: 'b', aor: 'sip:1002@x', sends: ['s2'] }])) }));
    expect(reinvite.status).toBe(200);
    const audioPorts = (sdp: string | undefined) => [...(sdp ?? '').matchAll(/^m=audio (\d+)/gm)].map((m) => m[1]);
    expect(audioPorts(reinvite.sdp)).toEqual(audioPorts(first.sdp));
    expect(audioPorts(first.sdp)).toHaveLength(2);
    const session = [...manager.liveSessions()][0]!;
    expect(session.details.participants.map((p) => [p.id, p.role, p.leftMs !== undefined])).toEqual([['c', 'customer', false], ['a', 'agent', true], ['b', 'agent', false]]);
    expect(session.meta.legs.map((l) => [l.role, l.channel])).toEqual([['customer', 0], ['agent', 1]]);
  });

  describe('SRTP', () => {
    const key = (n: number, seed: number) => Buffer.alloc(n, seed).toString('base64');
    const A = `1 AES_CM_128_HMAC_SHA1_80 inline:${key(30, 1)}|2^20|1:4`;
    const B = `1 AEAD_AES_256_GCM inline:${key(44, 2)}`;
    const C = `2 AES_CM_128_HMAC_SHA1_32 inline:${key(30, 3)}`;
    const offer = (first: string, second: string) => Buffer.from(toSrtpOffer(SDP, [[first], [second]]));
    const cryptoOf = (sdp: string | undefined) => [...(sdp ?? '').matchAll(/^a=crypto:(.*)$/gm)].map((m) => m[1]!.trim());

    it('answers each SRTP m-line with RTP/SAVP and its own key; a repeated offer keeps it, a new key re-keys', async () => {
      const req = request({ body: offer(A, B) });
      const first = await manager.invite(req);
      expect(first.status).toBe(200);
      expect(first.sdp).toMatch(/^m=audio \d+ RTP\/SAVP 0/m);
      const [a, b] = cryptoOf(first.sdp);
      expect(a).toMatch(/^1 AES_CM_128_HMAC_SHA1_80 inline:\S{40}$/);
      expect(b).toMatch(/^1 AEAD_AES_256_GCM inline:\S{59,60}$/);
      const session = [...manager.liveSessions()][0]!;
      expect(session.legs.map((l) => l.srtpSuite)).toEqual(['AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_256_GCM']);

      const same = await manager.update(request({ dialogId: req.dialogId, body: offer(A, B) }));
      expect(cryptoOf(same.sdp)).toEqual([a, b]);
      const rekeyed = await manager.update(request({ dialogId: req.dialogId, body: offer(C, B) }));
      const [a2, b2] = cryptoOf(rekeyed.sdp);
      expect(a2).toMatch(/^2 AES_CM_128_HMAC_SHA1_32 inline:/);
      expect(a2).not.toBe(a);
      expect(b2).toBe(b);
      expect(session.legs[0]!.srtpSuite).toBe('AES_CM_128_HMAC_SHA1_32');
      // A re-offer without SDP is answered with the current keys.
      expect(cryptoOf((await manager.update(request({ dialogId: req.dialogId, body: Buffer.alloc(0) }))).sdp)).toEqual([a2, b]);
    });

    it('answers a plain offer without crypto; under "required" a plain re-offer is refused and changes nothing', async () => {
      const plain = await manager.invite(request());
      expect(cryptoOf(plain.sdp)).toEqual([]);
      await manager.abort();
      manager = make();
      config = { ...config, rtp: { ...config.rtp, srtp: 'required' } };
      const req = request({ body: offer(A, B) });
      const first = await manager.invite(req);
      const refused = await manager.update(request({ dialogId: req.dialogId, body: Buffer.from(SDP) }));
      expect(refused.status).toBe(488);
      expect(rejections.at(-1)?.code).toBe('TALLENNE_SRTP_REQUIRED');
      expect(cryptoOf((await manager.update(request({ dialogId: req.dialogId, body: Buffer.alloc(0) }))).sdp)).toEqual(cryptoOf(first.sdp));
    });

    it('refuses an offer whose only crypto lines are malformed with 400, and only unknown suites with 488', async () => {
      expect((await manager.invite(request({ body: offer('1 AES_CM_128_HMAC_SHA1_80 inline:!!', '1 AES_CM_128_HMAC_SHA1_80 inline:!!') }))).status).toBe(400);
      expect(rejections.at(-1)?.code).toBe('TALLENNE_SDP_MALFORMED');
      expect((await manager.invite(request({ body: offer(`1 F8_128_HMAC_SHA1_80 inline:${key(30, 1)}`, `1 F8_128_HMAC_SHA1_80 inline:${key(30, 1)}`) }))).status).toBe(488);
      expect(rejections.at(-1)?.code).toBe('TALLENNE_SRTP_UNSUPPORTED');
    });
  });
});
