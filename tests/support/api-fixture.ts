/**
 * The API server over a real temporary index and audio store, for fastify.inject() tests:
 * users of every role with tokens, and recordings (own, team, other) with real two-channel
 * Ogg Opus audio made by ffmpeg (a 440 Hz customer and a 1000 Hz agent).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { parseConfigText } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { openIndex, type RecordingIndex } from '../../src/index/index.js';
import { createLogger } from '../../src/log.js';
import { NumberHasher, protectNumber } from '../../src/privacy/numbers.js';
import { FsAudioStore } from '../../src/storage/fs-store.js';
import { withRetention } from '../../src/retention/policy.js';
import { apiDeps, type HttpDeps } from '../../src/api/http.js';
import { buildServer, type ServerDeps } from '../../src/api/server.js';
import type { Metrics } from '../../src/api/metrics.js';
import { ROLES, type AccessRole } from '../../src/access/roles.js';
import type { RecordingEntry } from '../../src/types.js';
import { storeFile } from './store.js';
import { recordingKey } from '../../src/storage/audio-store.js';

export const CUSTOMER = '+358401112223';
/** Two helpdesk agents, one in sales, and the helpdesk's supervisor; extensions 1001-1003. */
export const AGENTS_TOML = `
[[agents]]
id = "aino"
name = "Aino"
extensions = ["1001"]
team = "helpdesk"
[[agents]]
id = "bertta"
name = "Bertta"
extensions = ["1002"]
team = "helpdesk"
[[agents]]
id = "cecilia"
name = "Cecilia"
extensions = ["1003"]
team = "sales"
[[agents]]
id = "sari"
name = "Sari"
team = "helpdesk"
supervisor_of = ["helpdesk"]
`;

export interface ApiFixture {
  readonly dir: string;
  readonly app: FastifyInstance;
  readonly deps: ServerDeps;
  readonly index: RecordingIndex;
  readonly config: Config;
  /** A token per role: agent is aino, supervisor is sari (helpdesk). */
  readonly tokens: Record<AccessRole, string>;
  /** Recording ids: aino's (helpdesk), bertta's (helpdesk), cecilia's (sales). */
  readonly ids: { own: string; team: string; other: string };
  readonly audioBytes: number;
  close(): Promise<void>;
}

/** A 3-second stereo Ogg Opus file: 440 Hz left (customer), 1000 Hz right (agent). */
export function makeOpus(file: string, seconds = 3): void {
  mkdirSync(dirname(file), { recursive: true });
  execFileSync('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `sine=frequency=440:sample_rate=48000:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=48000:duration=${seconds}`,
    '-filter_complex', '[0:a][1:a]join=inputs=2:channel_layout=stereo[a]', '-map', '[a]',
    '-c:a', 'libopus', '-b:a', '32k', file,
  ]);
}

export async function startApiFixture(opts: {
  /** Appended after the fixture's [api] keys: more [api] keys, then other tables. */ toml?: string;
  /** Calls in progress and live listens, for the /calls routes. */ live?: Pick<HttpDeps, 'calls' | 'listen'>;
} = {}): Promise<ApiFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'tallenne-api-'));
  const toml = `
[storage]
dir = "${dir}/data"
[privacy]
hash_key_file = "${dir}/data/number-hash.key"
[api]
body_limit = "4KiB"
max_export = 2
${opts.toml ?? ''}
${AGENTS_TOML}
`;
  const config = parseConfigText(toml, join(dir, 'tallenne.toml')).config;
  mkdirSync(config.storage.dir, { recursive: true });
  const index = await openIndex(config.storage.dir);
  const store = new FsAudioStore(config.storage.dir);
  const hasher = NumberHasher.open(config.privacy.hash_key_file);
  const registry = new Registry();
  const metrics = { registry, text: () => registry.metrics(), contentType: () => registry.contentType } as unknown as Metrics;
  const deps = apiDeps({ config: () => config, index, store, hasher, metrics, ready: () => Promise.resolve({ ready: true, checks: {} }), log: createLogger('silent'), ...opts.live });
  const app = await buildServer(deps);
  await app.ready();

  const t0 = Date.parse('2026-11-20T10:00:00Z');
  const put = async (n: number, agentId: string, team: string): Promise<{ id: string; bytes: number }> => {
    const id = `REC${n}AAAAAAAAAAAAAAAAAAAAAA`.slice(0, 26);
    const key = recordingKey(id, t0 + n * 60_000);
    const file = join(dir, `source-${n}.opus`);
    makeOpus(file);
    const stored = await storeFile(store, key, file);
    const p = protectNumber(CUSTOMER, config.privacy, hasher);
    const entry: RecordingEntry = {
      id, callId: `call-${n}`, siprec: true, answeredAt: t0 + n * 60_000, direction: 'inbound',
      customerNumber: p.masked, customerNumberHash: p.hash, serviceNumber: '+358201234567', agentId, agentName: agentId, team,
      participants: [], startedAt: new Date(t0 + n * 60_000).toISOString(), endedAt: new Date(t0 + n * 60_000 + 3000).toISOString(),
      durationMs: 3000, status: 'complete', endReason: 'bye', legs: [], pauses: [{ startMs: 1000, endMs: 1500 }], dtmf: [],
      file: key, fileBytes: stored.bytes, sampleRate: 48000, channels: 2,
    };
    await index.put(withRetention(entry, config.retention, { defaultCountry: config.privacy.default_country }));
    return { id, bytes: entry.fileBytes };
  };
  const own = await put(1, 'aino', 'helpdesk');
  const team = await put(2, 'bertta', 'helpdesk');
  const other = await put(3, 'cecilia', 'sales');

  const tokens = {} as Record<AccessRole, string>;
  for (const role of ROLES) {
    const name = `${role}-user`;
    const agentId = role === 'agent' ? 'aino' : role === 'supervisor' ? 'sari' : undefined;
    await index.users.addUser({ name, roles: [role], teams: [], ...(agentId ? { agentId } : {}) });
    tokens[role] = (await index.users.createToken(name, undefined)).token;
  }
  return {
    dir, app, deps, index, config, tokens,
    ids: { own: own.id, team: team.id, other: other.id },
    audioBytes: own.bytes,
    async close() {
      await app.close();
      await index.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
