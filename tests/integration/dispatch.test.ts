/**
 * Two recorders behind a real Kamailio running the shipped dispatcher config
 * (deploy/kamailio/kamailio.cfg), all on loopback:
 *   - SIPREC calls sent to Kamailio are spread round-robin over both recorders, with their
 *     in-dialog requests (ACK, BYE) following the Record-Route to the recorder that answered;
 *   - a full recorder answers OPTIONS and INVITE 503, and the calls go to the other one;
 *   - a recorder killed outright stops answering, and new calls go to the survivor.
 * Every call answered through Kamailio is recorded exactly once, on the recorder that took it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startDaemon, removeDir, type DaemonHandle } from '../support/daemon.js';
import { SampleDialog } from '../support/sample-replay.js';
import { kamailioInstalled, startKamailio, type KamailioHandle } from '../support/kamailio.js';
import { storedEntries } from '../support/index-reader.js';
import { VERSION } from '../../src/version.js';

const SAMPLE = 'rfc7866-invite-example.sip';

async function optionsSeen(d: DaemonHandle): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
  return Number(/^tallenne_sip_requests_total\{method="OPTIONS"\} (\d+)/m.exec(text)?.[1] ?? 0);
}

async function until(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const stored = (d: DaemonHandle): number => d.logs.filter((l) => l.msg === 'recording stored').length;

/** Opens a call through Kamailio; resolves with the dialog and which recorder port answered. */
async function call(kamailio: KamailioHandle, recorders: readonly DaemonHandle[]): Promise<{ dialog: SampleDialog; status: number; node: number }> {
  const dialog = new SampleDialog(kamailio.port);
  await dialog.open();
  const res = await dialog.sendSample(SAMPLE);
  const contact = dialog.answeredBy() ?? '';
  const node = recorders.findIndex((d) => contact.includes(`:${d.udpPort}`));
  return { dialog, status: res.status, node };
}

describe.skipIf(!kamailioInstalled())('recorders behind Kamailio', () => {
  let a: DaemonHandle;
  let b: DaemonHandle;
  let kamailio: KamailioHandle;

  beforeAll(async () => {
    [a, b] = await Promise.all([
      startDaemon({ extraToml: '[cluster]\nnode_id = "rec-a"\n' }),
      startDaemon({ extraToml: '[cluster]\nnode_id = "rec-b"\n', set: { calls: 'max_concurrent = 1' } }),
    ]);
    kamailio = await startKamailio([a.udpPort, b.udpPort]);
    // Both recorders have been probed and answered.
    await until('OPTIONS probes', async () => (await optionsSeen(a)) > 0 && (await optionsSeen(b)) > 0);
  }, 60_000);

  afterAll(async () => {
    await kamailio?.stop();
    for (const d of [a, b]) {
      await d?.kill();
      if (d) removeDir(d.dir);
    }
  });

  it('spreads calls over both recorders and routes each call\'s requests to the one that took it', async () => {
    const placed: Array<{ dialog: SampleDialog; status: number; node: number }> = [];
    // One at a time, each hung up before the next, so the full recorder B is never full here.
    for (let i = 0; i < 8; i++) {
      const c = await call(kamailio, [a, b]);
      expect(c.status).toBe(200);
      expect((await c.dialog.request('BYE')).status).toBe(200);
      c.dialog.close();
      placed.push(c);
    }
    const perNode = [0, 1].map((n) => placed.filter((c) => c.node === n).length);
    expect(perNode[0]! + perNode[1]!).toBe(8);
    expect(Math.min(...perNode)).toBeGreaterThanOrEqual(3);
    await until('8 recordings', () => stored(a) + stored(b) >= 8);
    expect([stored(a), stored(b)]).toEqual(perNode);
    // Each entry names the recorder that took the call, and so does each recorder's build info.
    for (const [d, node] of [[a, 'rec-a'], [b, 'rec-b']] as const) {
      const entries = await storedEntries(join(d.dir, 'data'));
      expect(entries.length).toBeGreaterThan(0);
      expect(entries.every((e) => e.node === node)).toBe(true);
      const metrics = await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^tallenne_build_info\\{version="${VERSION.replace(/\./g, '\\.')}",node="${node}"\\} 1$`, 'm'));
    }
  });

  it('sends calls to the other recorder while one is full (it answers 503)', async () => {
    const before = [stored(a), stored(b)];
    const open: Array<{ dialog: SampleDialog; status: number; node: number }> = [];
    // Until B has its one call (round-robin brings it there within two calls).
    while (!open.some((c) => c.node === 1)) {
      open.push(await call(kamailio, [a, b]));
      expect(open.length).toBeLessThanOrEqual(3);
    }
    const full = open.length;
    for (let i = 0; i < 4; i++) open.push(await call(kamailio, [a, b]));
    expect(open.map((c) => c.status)).toEqual(open.map(() => 200));
    // None of the calls placed while B was full went there, and none was lost.
    expect(open.slice(full).map((c) => c.node)).toEqual([0, 0, 0, 0]);
    const answered503 = async (): Promise<boolean> => /^tallenne_sip_responses_total\{code="503"\} [1-9]/m.test(await (await fetch(`http://127.0.0.1:${b.httpPort}/metrics`)).text());
    await until('B answering 503 while full', answered503);
    // The dashboard's "Recorders taking calls" reads the same rule: B says it takes none, A does.
    const accepting = async (d: DaemonHandle): Promise<string | undefined> => /^tallenne_accepting_calls (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${d.httpPort}/metrics`)).text())?.[1];
    expect([await accepting(a), await accepting(b)]).toEqual(['1', '0']);
    for (const c of open) {
      expect((await c.dialog.request('BYE')).status).toBe(200);
      c.dialog.close();
    }
    await until('the recordings', () => stored(a) + stored(b) >= before[0]! + before[1]! + open.length);
    await until('B taking calls again', async () => (await accepting(b)) === '1');
    expect([stored(a) - before[0]!, stored(b) - before[1]!]).toEqual([open.length - 1, 1]);
  });

  it('sends new calls to the survivor when a recorder is killed', async () => {
    // B must be up again in the rotation (its probes answered 200 once it was free).
    await until('B back in rotation', async () => {
      const seen = await optionsSeen(b);
      await new Promise((r) => setTimeout(r, 1200));
      return (await optionsSeen(b)) > seen;
    });
    await b.kill();
    const before = stored(a);
    const started = Date.now();
    const calls = [];
    for (let i = 0; i < 4; i++) calls.push(await call(kamailio, [a, b]));
    const tookMs = Date.now() - started;
    expect(calls.map((c) => [c.status, c.node])).toEqual([[200, 0], [200, 0], [200, 0], [200, 0]]);
    for (const c of calls) {
      expect((await c.dialog.request('BYE')).status).toBe(200);
      c.dialog.close();
    }
    await until('4 recordings on A', () => stored(a) >= before + 4);
    // For the README: the first call waits for the dead recorder's timeout (fr_timer, 1 s).
    console.log(`failover: 4 calls answered by the survivor in ${tookMs} ms after the kill`);
  });
});
