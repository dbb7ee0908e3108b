/**
 * vitest global setup: the run gets a temp folder of its own, `tallenne-test-run-XXXXXX`, and
 * TMPDIR points at it for the test workers and every process they start. At the end of the
 * run the folder must be empty: anything a test, a helper or a child process left there fails
 * the run with the list. The folder is removed either way, so a failed run leaks nothing.
 * Runs of other worktrees and other programs' temp files are outside it and never counted.
 *
 * It also offers the run one throwaway Swift (the tests' S3, tests/support/swift.ts), started
 * only when a test file first asks for it and stopped before the temp folder is checked.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { TEMP_PREFIX } from './support/cleanup.js';
import { serveSwiftOnDemand } from './support/swift.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The loopback URL of the run's Swift broker (tests/support/swift.ts `useSwift`). */
    swiftBroker: string;
  }
}

function sizeOf(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of readdirSync(path)) total += sizeOf(join(path, name));
  return total;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = mkdtempSync(join(tmpdir(), `${TEMP_PREFIX}run-`));
  const outer = process.env.TMPDIR;
  process.env.TMPDIR = root;
  const swift = await serveSwiftOnDemand();
  project.provide('swiftBroker', swift.url);
  return async () => {
    await swift.close();
    if (outer === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = outer;
    const left = readdirSync(root).map((name) => `  ${name} (${Math.ceil(sizeOf(join(root, name)) / 1024)} KiB)`);
    let removal = '';
    try {
      rmSync(root, { recursive: true, force: true });
    } catch (e) {
      removal = `\nand ${root} could not be removed: ${(e as Error).message} (a mount left behind?)`;
    }
    if (left.length > 0 || removal) {
      process.exitCode = 1;
      throw new Error(`the tests left ${left.length} entries in their temp folder (each test must remove what it makes, tests/support/cleanup.ts):\n${left.join('\n')}${removal}`);
    }
  };
}
