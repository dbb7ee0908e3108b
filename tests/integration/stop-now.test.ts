/**
 * A second SIGTERM during a graceful stop stops now (Daemon.destroy): no waiting for the
 * shutdown deadline or for finalisation, exit 1. The live call's spool stays, and the next
 * start recovers it as a truncated recording with the audio captured before the stop.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, removeDir, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient } from '../support/sip-client.js';
import { tonesForAnswer, startAll, closeAll, sleep } from '../support/legs.js';
import { siprecMultipart, siprecSdp, rsMetadata } from '../support/siprec-body.js';
import { storedEntry } from '../support/index-reader.js';

const daemons: DaemonHandle[] = [];
afterEach(async () => {
  const dirs = new Set(daemons.map((d) => d.dir));
  for (const d of daemons.splice(0)) await d.kill();
  for (const dir of dirs) removeDir(dir);
});

describe('stopping now', () => {
  it('a second SIGTERM exits at once; the cut call is recovered as truncated at the next start', async () => {
    // A long shutdown deadline: the graceful stop would wait a minute for the call.
    const d = await startDaemon({ set: { calls: 'shutdown_deadline = "60s"' } });
    daemons.push(d);
    const client = new SipTestClient('udp', d.udpPort);
    await client.open();
    const res = await client.invite({ ...siprecMultipart(siprecSdp(), rsMetadata('+358501112233', '1001')), headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    const id = d.logs.find((l) => l.msg === 'call answered')!.recording as string;
    const legs = await tonesForAnswer(res.body.toString());
    startAll(legs);
    await sleep(1500);

    d.proc.kill('SIGTERM');
    await d.waitForLog((l) => l.msg === 'stopping: new calls are refused');
    d.proc.kill('SIGTERM');
    expect(await d.exited).toBe(1);
    closeAll(legs);
    client.close();
    expect(d.logs.some((l) => l.msg.startsWith('stopping now'))).toBe(true);
    expect(d.logs.some((l) => l.msg === 'recording stored')).toBe(false);
    expect(readdirSync(join(d.dir, 'data', 'spool'))).toEqual([`${id}.spool`]);

    const again = await startDaemon({ dir: d.dir, configText: readFileSync(d.configFile, 'utf8') });
    daemons.push(again);
    await again.waitForLog((l) => l.msg === 'recording stored' && l.recording === id);
    const entry = await storedEntry(join(d.dir, 'data'), id);
    expect(entry.status).toBe('truncated');
    expect(entry.durationMs).toBeGreaterThan(1000);
    expect(entry.legs.every((l) => l.packets > 30)).toBe(true);
    expect(readdirSync(join(d.dir, 'data', 'spool'))).toEqual([]);
  });
});
