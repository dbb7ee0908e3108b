/**
 * A full disk mid-call (ENOSPC on the spool): the daemon keeps what it wrote, marks the
 * recording truncated, and loses nothing — once space is back the recording is finalised.
 * The data dir is a small file system of its own (a loop-mounted ext4 image, else a tmpfs)
 * so the disk really fills. Mounting needs root; without it the test is skipped, and says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDaemon, BIN, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient } from '../support/sip-client.js';
import { tonesForAnswer, startAll, closeAll } from '../support/legs.js';
import { siprecMultipart, siprecSdp, rsMetadata } from '../support/siprec-body.js';
import { ffprobe } from '../support/audio.js';
import { tempDir } from '../support/cleanup.js';
import { mountSmallFs, type SmallFs } from '../support/small-fs.js';

describe('disk full mid-call, on a small file system of its own', () => {
  const daemons: DaemonHandle[] = [];
  let dir: string;
  let data: string;
  let fs: SmallFs;
  beforeAll(() => {
    dir = tempDir('enospc');
    data = join(dir, 'data');
    fs = mountSmallFs(data, 8);
  });
  afterAll(async () => {
    for (const d of daemons) await d.kill();
  });

  it('keeps the audio written before ENOSPC and stores the recording as truncated', async ({ skip }) => {
    if (!fs.mounted) {
      const why = `SKIPPED: could not mount a small file system (${fs.reason}). It needs root or CAP_SYS_ADMIN: run \`sudo npx vitest run tests/integration/disk-full.test.ts\`.`;
      console.warn(why);
      skip(why);
    }
    const d = await startDaemon({ dir, set: { storage: 'min_free = "1KiB"' } });
    daemons.push(d);
    const client = new SipTestClient('udp', d.udpPort);
    await client.open();
    const { body, contentType } = siprecMultipart(siprecSdp(), rsMetadata('+358401234567', '1001'));
    const res = await client.invite({ body, contentType, headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    const legs = await tonesForAnswer(res.body.toString());
    startAll(legs);
    await new Promise((r) => setTimeout(r, 1500));
    // Fill the volume, leaving a few KiB: the spool's next flushes hit ENOSPC.
    const filler = join(data, 'filler');
    const st = statfsSync(data);
    writeFileSync(filler, Buffer.alloc(Math.max(0, st.bavail * st.bsize - 8192)));
    await d.waitForLog((l) => l.msg.startsWith('spool write failed'), 10_000);
    await new Promise((r) => setTimeout(r, 500));
    closeAll(legs);
    expect((await client.bye()).status).toBe(200);
    client.close();
    const outcome = await d.waitForLog((l) => l.msg === 'recording stored' || l.msg.startsWith('finalising the recording failed'));

    let done = d;
    if (outcome.msg !== 'recording stored') {
      // The encoder could not write either: the spool is kept. Free the space and restart.
      rmSync(filler);
      await d.kill();
      done = await startDaemon({ dir, configText: readFileSync(d.configFile, 'utf8') });
      daemons.push(done);
      await done.waitForLog((l) => l.msg === 'recording stored');
    } else {
      rmSync(filler);
    }
    const stored = done.logs.find((l) => l.msg === 'recording stored')!;
    const entry = JSON.parse(execFileSync(process.execPath, [BIN, 'recordings', 'show', stored.recording as string, '--json', '--config', done.configFile], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(entry.status).toBe('truncated');
    const probe = ffprobe(join(data, entry.file as string));
    // Audio up to the failure (about 1.5 s of the call), not the silence after it.
    expect(probe.durationSec).toBeGreaterThan(1.0);
  });
});
