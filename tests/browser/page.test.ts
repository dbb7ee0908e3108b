/**
 * The web page in a real browser against the real daemon: a call recorded during the test
 * (SIPREC, a masked DTMF digit, a 2 s pause by a=inactive), users and tokens made with the
 * CLI, Debian's Chromium driven by playwright-core.
 *
 * 1. A supervisor of the agent's team logs in, finds the call, seeks by keyboard and by click,
 *    plays from the middle (currentTime passes the middle + 1 s), solos the agent channel,
 *    sees the pause mark and puts the call on hold.
 * 2. An agent of another team does not find it, and its audio URL answers 403.
 * 3. A maintainer finds and opens it only with a reason. A DPO finds it by the customer's
 *    number written in national format, is refused erasure while it is held, releases the
 *    hold and erases it.
 * 4. An admin sees the access review. Screenshots of the search page, the player (1,280 × 720
 *    and phone size) and the review are saved in test-artifacts/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { BIN, startDaemon, removeDir, type DaemonHandle } from '../support/daemon.js';
import { SipTestClient, answerMedia } from '../support/sip-client.js';
import { RtpSender } from '../support/rtp-sender.js';
import { multipart, offerSdp, rsMetadataDoc, type MdParticipant } from '../support/rs-metadata.js';
import { sleep } from '../support/legs.js';
import { launchBrowser, screenshot, type BrowserHandle } from '../support/browser.js';
import { AGENTS_TOML } from '../support/api-fixture.js';

/** Aino records for the helpdesk; Cecilia is an agent in sales (AGENTS_TOML). */
const DIRECTORY = `
[roles]
service_numbers = ["+358201234567"]
internal_pattern = "^1\\\\d{3}$"
${AGENTS_TOML}`;

const CUSTOMER: MdParticipant = { id: 'cust', aor: 'sip:+358401234567@carrier.example', sends: ['s1'], receives: ['s2'] };
const AGENT: MdParticipant = { id: 'aino', aor: 'sip:1001@pbx.example', sends: ['s2'], receives: ['s1'] };
const STREAMS = [{ id: 's1', label: '1' }, { id: 's2', label: '2' }];
const CALL_MS = 8000;
const PAUSE_AT_MS = 3000;
const PAUSE_MS = 2000;

function tallenne(d: DaemonHandle, ...args: string[]): string {
  const r = spawnSync(process.execPath, [BIN, ...args, '--config', d.configFile], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tallenne ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** Adds a user and returns a fresh API token for them. */
function userWithToken(d: DaemonHandle, name: string, ...flags: string[]): string {
  tallenne(d, 'users', 'add', name, ...flags);
  return tallenne(d, 'tokens', 'create', name).trim();
}

/**
 * An 8 s SIPREC call, customer tone on the left and agent tone on the right, one masked DTMF
 * digit from the customer at 1 s, paused (a=inactive, no RTP) from 3 s to 5 s.
 */
async function recordPausedCall(d: DaemonHandle): Promise<string> {
  const since = d.logs.length;
  const c = new SipTestClient('udp', d.udpPort);
  await c.open();
  try {
    const md = rsMetadataDoc({ participants: [CUSTOMER, AGENT], streams: STREAMS });
    const res = await c.invite({ ...multipart(offerSdp(['1', '2']), md), headers: ['Require: siprec'] });
    expect(res.status).toBe(200);
    const t0 = Date.now();
    const answered = await d.waitForLog((x) => x.msg === 'call answered' && d.logs.indexOf(x) >= since);
    const id = answered.recording as string;
    const senders: RtpSender[] = [];
    for (const [i, m] of answerMedia(res.body.toString()).entries()) {
      const s = new RtpSender({ port: m.port, host: '127.0.0.1', toneHz: [440, 1000][i]!, payloadType: m.payloadTypes[0]!, law: m.payloadTypes[0] === 8 ? 'PCMA' : 'PCMU' });
      await s.open();
      senders.push(s);
    }
    for (const s of senders) s.start();
    await sleep(1000);
    await senders[0]!.sendEvent(5, 200);
    await sleep(PAUSE_AT_MS - (Date.now() - t0));
    const p = await c.request('INVITE', { body: offerSdp(['1', '2'], { version: 2, direction: 'inactive' }), contentType: 'application/sdp' });
    expect(p.status).toBe(200);
    for (const s of senders) s.stop();
    await sleep(PAUSE_MS);
    for (const s of senders) s.skip(PAUSE_MS);
    const r = await c.request('INVITE', { body: offerSdp(['1', '2'], { version: 3, direction: 'sendonly' }), contentType: 'application/sdp' });
    expect(r.status).toBe(200);
    for (const s of senders) s.start();
    await sleep(CALL_MS - (Date.now() - t0));
    for (const s of senders) s.close();
    expect((await c.bye()).status).toBe(200);
    await d.waitForLog((l) => l.msg === 'recording stored' && l.recording === id, 30_000);
    return id;
  } finally {
    c.close();
  }
}

/** What the test reads of the page's <audio> element (the tests compile without the DOM types). */
interface MediaLike {
  currentTime: number;
  readyState: number;
  addEventListener(type: string, fn: () => void, opts?: { once: boolean }): void;
  removeEventListener(type: string, fn: () => void): void;
}

/** 'loaded' once the waveforms are drawn, else what the page's status line says (an error). */
async function peaksLoaded(page: Page): Promise<string | null> {
  return (await page.getByTestId('timeline').getAttribute('data-peaks')) ?? page.locator('#status').textContent();
}

async function logIn(page: Page, base: string, token: string): Promise<void> {
  await page.goto(base);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByTestId('me').waitFor();
}

describe('the web page in Chromium', () => {
  let d: DaemonHandle;
  let browser: BrowserHandle;
  let base: string;
  let id: string;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    if (!existsSync('/usr/bin/chromium')) throw new Error('Chromium is missing: apt-get install chromium (.ci/run installs it)');
    d = await startDaemon({ extraToml: DIRECTORY, set: { privacy: 'mask_dtmf = true' } });
    base = `http://127.0.0.1:${d.httpPort}/`;
    tokens.supervisor = userWithToken(d, 'sanna', '--role', 'supervisor', '--team', 'helpdesk');
    tokens.otherAgent = userWithToken(d, 'cecilia', '--role', 'agent', '--agent', 'cecilia');
    tokens.dpo = userWithToken(d, 'dora', '--role', 'dpo');
    tokens.maintainer = userWithToken(d, 'mari', '--role', 'maintainer');
    tokens.admin = userWithToken(d, 'aada', '--role', 'admin');
    [id, browser] = await Promise.all([recordPausedCall(d), launchBrowser()]);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await d?.kill();
    if (d) removeDir(d.dir);
  });

  it('a supervisor finds the call, seeks, plays from the middle, solos the agent and sees the pause', async () => {
    const page = await browser.freshPage({ width: 1280, height: 720 });
    await logIn(page, base, tokens.supervisor!);
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor();
    await expect.poll(() => row.textContent(), { timeout: 10_000 }).toContain('Aino');
    expect(await row.textContent()).toContain('+358401234***');
    await screenshot(page, 'search');

    await row.getByRole('button').click();
    const player = page.getByTestId('player');
    await player.waitFor();
    const timeline = page.getByRole('slider', { name: 'Position in the recording' });
    await expect.poll(() => peaksLoaded(page), { timeout: 20_000 }).toBe('loaded');
    const audio = page.getByTestId('audio');
    const currentTime = (): Promise<number> => audio.evaluate((a) => (a as unknown as MediaLike).currentTime);
    await audio.evaluate((el) => {
      const a = el as unknown as MediaLike;
      return a.readyState >= 1 ? null : new Promise<void>((r) => a.addEventListener('loadedmetadata', () => r(), { once: true }));
    });

    // Keyboard: End, Home, then one step of 5 s.
    await timeline.focus();
    await page.keyboard.press('End');
    expect(await timeline.getAttribute('aria-valuenow')).toBe(String(Math.round(CALL_MS / 1000)));
    await page.keyboard.press('Home');
    expect(await currentTime()).toBe(0);
    await page.keyboard.press('ArrowRight');
    expect(Math.abs((await currentTime()) - 5)).toBeLessThan(0.1);

    // Click in the middle, then play: the element streams on past the middle + 1 s.
    const box = (await timeline.boundingBox())!;
    await timeline.click({ position: { x: box.width / 2, y: box.height / 2 } });
    const middle = CALL_MS / 2000;
    expect(Math.abs((await currentTime()) - middle)).toBeLessThan(0.2);
    await page.getByRole('button', { name: 'Play', exact: true }).click();
    await audio.evaluate((el, target: number) => new Promise<void>((resolve) => {
      const a = el as unknown as MediaLike;
      const check = (): void => {
        if (a.currentTime > target) {
          a.removeEventListener('timeupdate', check);
          resolve();
        }
      };
      a.addEventListener('timeupdate', check);
      check();
    }), middle + 1);
    expect(await currentTime()).toBeGreaterThan(middle + 1);
    // Back to the start by keyboard while it plays (so the end cannot race the click), then pause.
    await timeline.focus();
    await page.keyboard.press('Home');
    if (await audio.evaluate((a) => !(a as unknown as { paused: boolean }).paused)) await page.getByRole('button', { name: 'Pause', exact: true }).click();
    const stopped = await currentTime();
    await timeline.focus();
    await page.keyboard.press('ArrowRight');
    expect(Math.abs((await currentTime()) - (stopped + 5))).toBeLessThan(0.1);

    // Solo the agent: the customer's gain goes to 0 in the Web Audio graph.
    await page.getByTestId('solo-agent').click();
    expect(await page.getByTestId('solo-agent').getAttribute('aria-pressed')).toBe('true');
    const gain = (ch: string): Promise<string | null> => player.locator(`.channel[data-channel="${ch}"]`).getAttribute('data-gain');
    expect(await gain('agent')).toBe('1');
    expect(await gain('customer')).toBe('0');
    const pause = player.locator('.track[data-channel="agent"] .mark-pause');
    await expect.poll(() => pause.isVisible(), { timeout: 10_000 }).toBe(true);
    const pauseBox = (await pause.boundingBox())!;
    const trackBox = (await player.locator('.track[data-channel="agent"]').boundingBox())!;
    // The band sits where the stored entry puts the pause, to within a pixel or two. The
    // entry's edges are the re-INVITEs' arrival, so they are checked against the script's 3 s
    // and 5 s only to within a scheduling delay.
    const entry = JSON.parse(tallenne(d, 'recordings', 'show', id, '--json')) as { durationMs: number; pauses: { startMs: number; endMs?: number }[] };
    expect(entry.pauses).toHaveLength(1);
    const stored = entry.pauses[0]!;
    expect(Math.abs(stored.startMs - PAUSE_AT_MS)).toBeLessThan(500);
    expect(Math.abs(stored.endMs! - (PAUSE_AT_MS + PAUSE_MS))).toBeLessThan(500);
    expect(Math.abs((pauseBox.x - trackBox.x) / trackBox.width - stored.startMs / entry.durationMs)).toBeLessThan(0.005);
    expect(Math.abs(pauseBox.width / trackBox.width - (stored.endMs! - stored.startMs) / entry.durationMs)).toBeLessThan(0.005);
    await expect.poll(() => player.locator('.marklist li[data-kind="pause"]').textContent(), { timeout: 10_000 }).toMatch(/Recording paused 0:0[23]–0:0[45]/);
    // The masked digit is shown as masked, on the customer's channel.
    expect(await player.locator('.track[data-channel="customer"] .mark-dtmf').textContent()).toBe('•');
    expect(await player.locator('.marklist li[data-kind="dtmf"]').textContent()).toContain('DTMF digit (masked)');
    await screenshot(page, 'player');

    // A supervisor may put the call on legal hold: a state change, so the session's CSRF token goes with it.
    await player.locator('button[data-action="hold"]').click();
    await page.getByLabel('Reason (written to the audit log)').fill('complaint 2026-118');
    await player.locator('.action-form button[type="submit"]').click();
    await page.locator('button[data-action="release"]').waitFor();
    expect(await page.locator(`tr[data-id="${id}"] td[data-label="Hold"]`).textContent()).toBe('held');

    // Phone size: nothing runs off the side of the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    await player.scrollIntoViewIfNeeded();
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    await screenshot(page, 'player-phone');
  });

  it('an agent of another team does not find the call, and its audio URL answers 403', async () => {
    const page = await browser.freshPage();
    await logIn(page, base, tokens.otherAgent!);
    await expect.poll(() => page.locator('.summary').first().textContent(), { timeout: 10_000 }).toBe('No recordings found.');
    expect(await page.locator(`tr[data-id="${id}"]`).count()).toBe(0);
    const status = await page.evaluate(async (path) => (await fetch(path)).status, `/api/v1/recordings/${id}/audio`);
    expect(status).toBe(403);
  });

  it('a maintainer gives a reason to search and to open the call, then it loads', async () => {
    const page = await browser.freshPage();
    await logIn(page, base, tokens.maintainer!);
    await page.getByLabel('Reason for searching (audited)').fill('ticket 7781: one-way audio reported');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor();
    await row.getByRole('button').click();
    const reason = page.getByLabel('Reason for listening (written to the audit log)');
    expect(await reason.inputValue()).toBe('ticket 7781: one-way audio reported');
    await page.getByRole('button', { name: 'Open the recording', exact: true }).click();
    await expect.poll(() => peaksLoaded(page), { timeout: 20_000 }).toBe('loaded');
    const audio = page.getByTestId('audio');
    expect(await audio.getAttribute('src')).toContain('reason=ticket');
    await audio.evaluate((el) => {
      const a = el as unknown as MediaLike;
      return a.readyState >= 1 ? null : new Promise<void>((r) => a.addEventListener('loadedmetadata', () => r(), { once: true }));
    });
    // Export needs the same: the buttons ask for a reason; hold is not a maintainer's.
    expect(await page.locator('button[data-action="hold"]').count()).toBe(0);
  });

  it("a DPO finds the call by the customer's national number, is refused erasure while held, releases and erases it", async () => {
    const page = await browser.freshPage();
    await logIn(page, base, tokens.dpo!);
    // A DPO searches by number only (subject access), not by browsing.
    expect(await page.locator('#q-from').count()).toBe(0);
    await page.getByLabel("Customer's number (any form)").fill('040 123 4567');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor();
    expect(await row.textContent()).not.toContain('4567');
    await screenshot(page, 'subject-search');

    // Erasure: refused while the supervisor's hold stands; the DPO releases it, then erases.
    await row.getByRole('button').click();
    const player = page.getByTestId('player');
    const erase = async (): Promise<void> => {
      await player.locator('button[data-action="erase"]').click();
      await page.getByLabel('Reason (written to the audit log)').fill('erasure request 2026-77');
      await page.getByLabel('I understand the audio and metadata are destroyed').check();
      await player.locator('.action-form button[type="submit"]').click();
    };
    await erase();
    await expect.poll(() => page.locator('#status[data-kind="error"]').textContent(), { timeout: 10_000 }).toContain('API_ERASURE_REFUSED');
    await player.locator('button[data-action="release"]').click();
    await page.getByLabel('Reason (written to the audit log)').fill('complaint 2026-118 closed');
    await player.locator('.action-form button[type="submit"]').click();
    await page.locator('button[data-action="hold"]').waitFor();
    expect(await row.locator('td[data-label="Hold"]').textContent()).toBe('—');
    await erase();
    await row.waitFor({ state: 'detached' });
    expect(await player.count()).toBe(0);
    const gone = await page.evaluate(async (path) => (await fetch(path)).status, `/api/v1/recordings/${id}`);
    expect(gone).toBe(404);
  });

  it('an admin sees the access review and no recordings', async () => {
    const page = await browser.freshPage();
    await logIn(page, base, tokens.admin!);
    expect(await page.getByRole('button', { name: 'Recordings' }).count()).toBe(0);
    const table = page.getByTestId('access-review');
    await table.locator('tbody tr').first().waitFor();
    const names = await table.locator('tbody th').allTextContents();
    expect(names.sort()).toEqual(['aada', 'cecilia', 'dora', 'mari', 'sanna']);
    const sanna = table.locator('tbody tr', { has: page.locator('th', { hasText: 'sanna' }) });
    expect(await sanna.locator('td[data-label="Roles"]').textContent()).toBe('supervisor');
    expect(await sanna.locator('td[data-label="Teams in scope"]').textContent()).toBe('helpdesk');
    // The admin's own login is the last use of their account.
    const aada = table.locator('tbody tr', { has: page.locator('th', { hasText: 'aada' }) });
    expect(await aada.locator('td[data-label="Last used"]').textContent()).not.toBe('never');
    await screenshot(page, 'access-review');
  });

  it('the page ran under its CSP without a violation or an uncaught error', () => {
    expect(browser.errors.filter((e) => /Content Security Policy|Refused to|Uncaught|TypeError/.test(e))).toEqual([]);
  });
});
