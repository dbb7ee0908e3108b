/**
 * A real browser for the page's tests: Debian's Chromium driven by playwright-core, headless,
 * with everything that would reach outside the machine turned off, in a fresh profile that is
 * deleted on close. Chromium's own temp files (PulseAudio's `pulse-*` folder among them) go to a
 * folder beside the profile, removed with it. Console errors (a CSP violation, an uncaught exception) are collected so a
 * test can assert there were none. Screenshots go to test-artifacts/ (git-ignored).
 */
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO, removeDir } from './daemon.js';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(REPO, 'test-artifacts');

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-domain-reliability',
  '--metrics-recording-only',
];

export interface BrowserHandle {
  readonly context: BrowserContext;
  /** A new tab with no cookies from an earlier user; its console errors land in `errors`. */
  freshPage(viewport?: { width: number; height: number }): Promise<Page>;
  /** Console errors and page exceptions seen so far, in every tab. */
  readonly errors: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<BrowserHandle> {
  const root = mkdtempSync(join(tmpdir(), 'tallenne-chromium-'));
  const profile = join(root, 'profile');
  const scratch = join(root, 'tmp');
  mkdirSync(profile);
  mkdirSync(scratch);
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      env: { ...process.env, TMPDIR: scratch },
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 720 },
      acceptDownloads: false,
      serviceWorkers: 'block',
    });
  } catch (e) {
    removeDir(root);
    throw e;
  }
  const errors: string[] = [];
  const watch = (page: Page): void => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
  };
  return {
    context,
    errors,
    async freshPage(viewport) {
      const old = context.pages();
      const page = await context.newPage();
      for (const p of old) await p.close();
      await context.clearCookies();
      if (viewport) await page.setViewportSize(viewport);
      watch(page);
      return page;
    },
    async close() {
      try {
        await context.close();
      } finally {
        removeDir(root);
      }
    },
  };
}

/** Saves a screenshot as test-artifacts/NAME.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}
