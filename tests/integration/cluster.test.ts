/**
 * The recorder cluster end to end, on loopback: two `tallenne` nodes (rec-a, rec-b) share one
 * PostgreSQL register and one S3 bucket (the run's Swift, each node through a relay the test
 * can cut) behind a real Kamailio running deploy/kamailio/kamailio.cfg. SIPREC calls with
 * audio come from the sample replay through Kamailio.
 *   1. 40 calls are spread over both nodes, and `recordings list` with either node's config
 *      shows all 40.
 *   2. A node SIGKILLed with calls in progress: new calls go to the survivor; the dead node's
 *      calls are stored as `truncated`, once by `tallenne recover --spool-dir` on the other
 *      node (after the dead node's spool leases run out) and once by the node's own restart.
 *   3. S3 cut for 20 s while calls keep arriving and ending on both nodes: nothing is lost,
 *      the outbox gauge rises and drains once S3 is back.
 *   4. Both nodes purge at once: each expired recording is destroyed exactly once, and the one
 *      audit chain verifies with entries from both nodes.
 * Throughout, every answered call has exactly one recording in the register, and every
 * recording's audio is in the bucket. The figures printed feed the README's cluster section.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { makeS3Client } from '../../src/storage/s3-client.js';
import { openPostgresIndex } from '../../src/index/postgres/open.js';
import type { PostgresRecordingIndex } from '../../src/index/postgres/recordings.js';
import type { RecordingEntry } from '../../src/types.js';
import { tempDir } from '../support/cleanup.js';
import { sleep } from '../support/legs.js';
import { kamailioInstalled, startKamailio, type KamailioHandle } from '../support/kamailio.js';
import { postgresInstalled, startPostgres, type PostgresHandle } from '../support/postgres.js';
import { swiftInstalled, useSwift, type S3Endpoint } from '../support/swift.js';
import { CLUSTER_SAMPLE, ClusterNode, placeCall, type ClusterCall } from '../support/cluster.js';
import { SampleDialog, sampleMessage } from '../support/sample-replay.js';

async function until(what: string, pred: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** Places `n` calls at once; every one must be answered. */
async function callsAtOnce(kamailio: KamailioHandle, nodes: readonly ClusterNode[], n: number): Promise<ClusterCall[]> {
  const calls = await Promise.all(Array.from({ length: n }, () => placeCall(kamailio, nodes)));
  expect(calls.map((c) => c.status)).toEqual(calls.map(() => 200));
  return calls;
}

async function hangUpAll(calls: readonly ClusterCall[]): Promise<void> {
  expect(await Promise.all(calls.map((c) => c.hangUp()))).toEqual(calls.map(() => 200));
}

describe.skipIf(!kamailioInstalled() || !postgresInstalled() || !swiftInstalled())('two recorders, one register, one bucket', () => {
  let pg: PostgresHandle;
  let s3: S3Endpoint;
  let client: S3Client;
  let register: PostgresRecordingIndex;
  let kamailio: KamailioHandle;
  let a: ClusterNode;
  let b: ClusterNode;
  const bucket = `cluster-${randomBytes(5).toString('hex')}`;
  /** Every call answered in this file, by Call-ID, with the status its recording must have. */
  const answered = new Map<string, 'complete' | 'truncated'>();

  const nodes = (): ClusterNode[] => [a, b];
  const answer = (calls: readonly ClusterCall[], status: 'complete' | 'truncated' = 'complete'): void => {
    for (const c of calls) answered.set(c.callId, status);
  };
  async function entries(): Promise<RecordingEntry[]> {
    return (await register.list({}, { limit: 10_000 })).items;
  }
  /** The register's entries of these calls, once every one is there. */
  async function recorded(callIds: readonly string[], timeoutMs = 60_000): Promise<RecordingEntry[]> {
    let found: RecordingEntry[] = [];
    await until(`${callIds.length} recordings`, async () => {
      found = (await entries()).filter((e) => callIds.includes(e.callId));
      return found.length >= callIds.length;
    }, timeoutMs);
    return found;
  }
  const optionsSeen = (n: ClusterNode): Promise<number> => n.metric('tallenne_sip_requests_total\\{method="OPTIONS"\\}').then((v) => (Number.isNaN(v) ? 0 : v));
  /** Waits until Kamailio has probed `n` again since now (it is back in the rotation once a probe is answered 200). */
  async function probedAgain(n: ClusterNode): Promise<void> {
    const seen = await optionsSeen(n);
    await until(`${n.name} probed`, async () => (await optionsSeen(n)) > seen, 20_000);
  }

  beforeAll(async () => {
    [pg, s3] = await Promise.all([startPostgres(), useSwift()]);
    client = makeS3Client({ bucket, prefix: 'cluster/', endpoint: s3.endpoint, region: s3.region, forcePathStyle: true }, s3);
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const url = await pg.createDatabase();
    const shared = tempDir('cluster');
    const indexUrlFile = join(shared, 'index.url');
    writeFileSync(indexUrlFile, `${url}\n`, { mode: 0o600 });
    const hashKeyFile = join(shared, 'number-hash.key');
    writeFileSync(hashKeyFile, randomBytes(32), { mode: 0o600 });
    const setup = { s3, bucket, indexUrlFile, hashKeyFile };
    [a, b] = await Promise.all([ClusterNode.create('rec-a', setup), ClusterNode.create('rec-b', setup)]);
    // Both nodes migrate the new register at once, as two nodes of a site may.
    const migrated = await Promise.all([a.cli('index', 'migrate'), b.cli('index', 'migrate')]);
    expect(migrated.join('')).toMatch(/schema version/);
    expect(migrated.join('')).not.toContain(pg.password);
    register = await openPostgresIndex({ url, poolSize: 2, node: 'cluster-test' });
    await Promise.all([a.start(), b.start()]);
    kamailio = await startKamailio([a.sipPort, b.sipPort]);
    await Promise.all([probedAgain(a), probedAgain(b)]);
  }, 180_000);

  afterAll(async () => {
    await kamailio?.stop();
    for (const n of [a, b]) await n?.close();
    await register?.close();
    client?.destroy();
    await pg?.stop();
  });

  it('spreads 40 calls over both nodes, and either node lists all 40', async () => {
    const calls: ClusterCall[] = [];
    // Four waves of ten calls at once, each with two seconds of audio.
    for (let wave = 0; wave < 4; wave++) {
      const placed = await callsAtOnce(kamailio, nodes(), 10);
      answer(placed);
      await sleep(2000);
      await hangUpAll(placed);
      calls.push(...placed);
    }
    const perNode = nodes().map((n) => calls.filter((c) => c.node === n).length);
    console.log(`40 calls: ${perNode[0]} on rec-a, ${perNode[1]} on rec-b`);
    expect(perNode[0]! + perNode[1]!).toBe(40);
    expect(Math.min(...perNode)).toBeGreaterThanOrEqual(15);

    const stored = await recorded(calls.map((c) => c.callId));
    expect(stored).toHaveLength(40);
    for (const c of calls) {
      const e = stored.find((s) => s.callId === c.callId)!;
      expect(e.node).toBe(c.node!.name);
      expect(e.status).toBe('complete');
      expect(e.legs.some((l) => l.packets > 0)).toBe(true);
    }
    for (const n of nodes()) {
      const listed = JSON.parse(await n.cli('recordings', 'list', '--json', '--limit', '1000')) as Array<{ id: string; node: string }>;
      expect(listed.map((r) => r.id).sort()).toEqual(stored.map((e) => e.id).sort());
      expect(new Set(listed.map((r) => r.node))).toEqual(new Set(['rec-a', 'rec-b']));
    }
  }, 120_000);

  it('answers a copy of one INVITE once between the nodes: the second gets 482', async () => {
    // What Kamailio's failover sends when the first node was only slow: the same Call-ID,
    // From tag and CSeq, by another branch, to the other node.
    const merged = (): Promise<number> => b.metric('tallenne_calls_rejected_total\\{reason="merged_request"\\}').then((v) => (Number.isNaN(v) ? 0 : v));
    const mergedBefore = await merged();
    const first = new SampleDialog(a.sipPort);
    const copy = new SampleDialog(b.sipPort);
    await Promise.all([first.open(), copy.open()]);
    try {
      expect((await first.sendSample(CLUSTER_SAMPLE)).status).toBe(200);
      answer([{ callId: first.callId } as ClusterCall]);
      const refused = await copy.sendInvite(sampleMessage(CLUSTER_SAMPLE, { serverPort: b.sipPort, localPort: copy.localPort, callId: first.callId }));
      expect(refused.status).toBe(482);
      expect((await first.request('BYE')).status).toBe(200);
    } finally {
      first.close();
      copy.close();
    }
    const [entry] = await recorded([first.callId]);
    expect(entry!.node).toBe('rec-a');
    expect(await merged()).toBe(mergedBefore + 1);
  });

  it('sends new calls to the survivor when a node is killed mid-call; the other node recovers its calls', async () => {
    const inProgress = await callsAtOnce(kamailio, nodes(), 6);
    const onA = inProgress.filter((c) => c.node === a);
    const onB = inProgress.filter((c) => c.node === b);
    expect(onA.length).toBeGreaterThan(0);
    expect(onB.length).toBeGreaterThan(0);
    answer(onA, 'truncated');
    answer(onB);
    // A second and a half of their audio is spooled on A when A dies.
    await sleep(1500);
    await a.daemon.kill();
    const killedAt = Date.now();
    // New calls at once: the ones Kamailio first sends to the dead node fail over on its timeout.
    const after = await callsAtOnce(kamailio, nodes(), 4);
    answer(after);
    const failoverMs = Math.max(...after.map((c) => c.answeredAt)) - killedAt;
    const firstMs = Math.min(...after.map((c) => c.answeredAt)) - killedAt;
    console.log(`failover: first new call answered by the survivor ${firstMs} ms after the kill, all 4 within ${failoverMs} ms`);
    expect(after.map((c) => c.node?.name)).toEqual(['rec-b', 'rec-b', 'rec-b', 'rec-b']);
    // A functional bound of the shipped config (fr_timer 1 s, failover on timeout), not a speed figure.
    expect(failoverMs).toBeLessThanOrEqual(3000);
    for (const c of onA) c.drop();
    await hangUpAll([...onB, ...after]);

    // The dead node's live calls hold their spool leases until these run out: a recover run
    // on the other node leaves those spools alone until then, and takes them after.
    const first = JSON.parse(await b.cli('recover', '--spool-dir', a.spoolDir, '--json')) as { stored: string[]; leasedElsewhere: number };
    expect(first.stored).toEqual([]);
    expect(first.leasedElsewhere).toBe(onA.length);
    const recovered: string[] = [];
    const leaseStarted = Date.now();
    await until('the dead node\'s spools recovered by rec-b', async () => {
      const r = JSON.parse(await b.cli('recover', '--spool-dir', a.spoolDir, '--json')) as { stored: string[]; failed: unknown[] };
      expect(r.failed).toEqual([]);
      recovered.push(...r.stored);
      if (recovered.length < onA.length) await sleep(3000);
      return recovered.length >= onA.length;
    }, 90_000);
    console.log(`recover --spool-dir on rec-b stored the dead node's ${onA.length} call(s) ${Date.now() - leaseStarted} ms after its first try (lease TTL)`);
    const truncated = await recorded(onA.map((c) => c.callId));
    expect(truncated.map((e) => e.status)).toEqual(onA.map(() => 'truncated'));
    expect(truncated.map((e) => e.id).sort()).toEqual([...recovered].sort());
    // The audio spooled before the kill is in them.
    for (const e of truncated) expect(e.legs.some((l) => l.packets > 0)).toBe(true);
    expect(readdirSync(a.spoolDir).filter((f) => f.endsWith('.spool'))).toEqual([]);
    await recorded([...onB, ...after].map((c) => c.callId));

    // The killed node comes back on its port; its start-up recovery (done before it is
    // ready) finds nothing left to store.
    await a.start();
    expect(a.daemon.logs.filter((l) => l.msg === 'finalising recordings left by an earlier run' || l.msg === 'recording stored')).toEqual([]);
    await probedAgain(a);
  }, 180_000);

  it('a node killed mid-call stores its calls as truncated when it restarts', async () => {
    const inProgress = await callsAtOnce(kamailio, nodes(), 4);
    const onB = inProgress.filter((c) => c.node === b);
    const onA = inProgress.filter((c) => c.node === a);
    expect(onB.length).toBeGreaterThan(0);
    answer(onB, 'truncated');
    answer(onA);
    await sleep(1500);
    await b.daemon.kill();
    for (const c of onB) c.drop();
    await hangUpAll(onA);
    await b.start();
    const truncated = await recorded(onB.map((c) => c.callId));
    expect(truncated.map((e) => [e.status, e.node])).toEqual(onB.map(() => ['truncated', 'rec-b']));
    for (const e of truncated) expect(e.legs.some((l) => l.packets > 0)).toBe(true);
    await recorded(onA.map((c) => c.callId));
    await probedAgain(b);
  }, 120_000);

  it('keeps recording on both nodes through a 20 s S3 outage; the outboxes drain when S3 is back', async () => {
    const failures = await Promise.all(nodes().map((n) => n.metric('tallenne_storage_upload_failures_total')));
    for (const n of nodes()) n.relay.cut();
    const cutAt = Date.now();
    const calls: ClusterCall[] = [];
    const peak = [0, 0];
    // Calls arrive and end on both nodes during the whole cut: waves of four, two seconds each.
    while (Date.now() - cutAt < 20_000) {
      const wave = await callsAtOnce(kamailio, nodes(), 4);
      answer(wave);
      calls.push(...wave);
      await sleep(2000);
      await hangUpAll(wave);
      for (const [i, n] of nodes().entries()) peak[i] = Math.max(peak[i]!, await n.metric('tallenne_storage_outbox_recordings'));
    }
    await until('both outboxes hold the calls they took', async () => {
      for (const [i, n] of nodes().entries()) peak[i] = Math.max(peak[i]!, await n.metric('tallenne_storage_outbox_recordings'));
      return nodes().every((n, i) => peak[i]! >= calls.filter((c) => c.node === n).length);
    });
    for (const [i, n] of nodes().entries()) {
      expect(calls.filter((c) => c.node === n).length).toBeGreaterThan(0);
      expect(await n.metric('tallenne_storage_upload_failures_total')).toBeGreaterThan(failures[i]!);
    }
    // Nothing of this outage's calls is in the register yet: the entry waits for the upload.
    expect((await entries()).filter((e) => calls.some((c) => c.callId === e.callId))).toEqual([]);
    for (const n of nodes()) n.relay.restore();
    const restoredAt = Date.now();
    await until('the outboxes drain', async () => (await Promise.all(nodes().map((n) => n.metric('tallenne_storage_outbox_recordings')))).every((v) => v === 0), 120_000);
    console.log(`S3 outage: ${calls.length} calls during ${Math.round((restoredAt - cutAt) / 1000)} s, outbox peak ${peak[0]} on rec-a and ${peak[1]} on rec-b, drained ${Date.now() - restoredAt} ms after S3 came back`);
    const stored = await recorded(calls.map((c) => c.callId));
    expect(stored.map((e) => e.status)).toEqual(calls.map(() => 'complete'));
    // Each spool went once its audio was confirmed in the bucket and its entry committed.
    await until('the spools are gone', () => nodes().every((n) => readdirSync(n.spoolDir).filter((f) => f.endsWith('.spool')).length === 0));
  }, 180_000);

  it('two nodes purging at once destroy each expired recording exactly once; the audit chain verifies across both', async () => {
    // Recordings stored from now on keep their audio one second.
    await Promise.all(nodes().map((n) => n.reload('[retention]\naudio = "1s"')));
    const calls = await callsAtOnce(kamailio, nodes(), 6);
    answer(calls);
    await sleep(1500);
    await hangUpAll(calls);
    const expiring = await recorded(calls.map((c) => c.callId));
    expect(new Set(expiring.map((e) => e.node))).toEqual(new Set(['rec-a', 'rec-b']));
    await sleep(Math.max(0, Math.max(...expiring.map((e) => Date.parse(e.retention!.audioExpiresAt))) - Date.now() + 100));

    const reports = (await Promise.all(nodes().map((n) => n.cli('retention', 'run', '--json', '--actor', `purge-${n.name}`))))
      .map((out) => JSON.parse(out) as { audio: string[]; metadata: string[]; busyElsewhere?: boolean });
    console.log(`purge at once: rec-a destroyed ${reports[0]!.audio.length}${reports[0]!.busyElsewhere ? ' (found the lock taken)' : ''}, rec-b ${reports[1]!.audio.length}${reports[1]!.busyElsewhere ? ' (found the lock taken)' : ''} of ${expiring.length}`);
    const destroyed = reports.flatMap((r) => r.audio);
    expect(reports.every((r) => r.metadata.length === 0)).toBe(true);
    expect(destroyed.sort()).toEqual(expiring.map((e) => e.id).sort());
    const purged = (await entries()).filter((e) => e.audioPurgedAt !== undefined);
    expect(purged.map((e) => e.id).sort()).toEqual(expiring.map((e) => e.id).sort());

    const audit = JSON.parse(await a.cli('audit', 'list', '--json', '--limit', '100000')) as Array<{ action: string; recordingId?: string; node?: string }>;
    const purges = audit.filter((e) => e.action === 'purge-audio');
    expect(purges.map((e) => e.recordingId).sort()).toEqual(expiring.map((e) => e.id).sort());
    for (const n of nodes()) {
      const verified = await n.cli('audit', 'verify');
      expect(verified).toMatch(/^audit log intact: \d+ entries/);
      const perNode = Object.fromEntries([...verified.matchAll(/^ {2}(\S+): (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
      expect(Object.keys(perNode).sort()).toEqual(['rec-a', 'rec-b']);
      expect(perNode['rec-a']! + perNode['rec-b']!).toBe(audit.length);
    }
    const objects = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'cluster/' }));
    for (const e of expiring) expect(objects.Contents?.some((o) => o.Key === `cluster/${e.file}`)).toBe(false);
  }, 120_000);

  it('holds exactly one recording per answered call, and the audio of each in the bucket', async () => {
    const all = await entries();
    expect(all.map((e) => e.callId).sort()).toEqual([...answered.keys()].sort());
    for (const e of all) expect(e.status).toBe(answered.get(e.callId));
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'cluster/', ...(token ? { ContinuationToken: token } : {}) }));
      keys.push(...(page.Contents ?? []).map((o) => o.Key!));
      token = page.NextContinuationToken;
    } while (token);
    expect(keys.sort()).toEqual(all.filter((e) => e.audioPurgedAt === undefined).map((e) => `cluster/${e.file}`).sort());
  });
});
