/**
 * What a test file leaves behind goes when the file ends, passed, failed or skipped: temp
 * folders, child processes still running, mounts. The test runner (tests/support/runner.ts)
 * runs the cleanups after every hook of the file, newest first, so a process is killed before
 * the mount it writes to is unmounted, and that before its folder is removed.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Every temp name the tests make starts with this (tests/global-setup.ts checks for them). */
export const TEMP_PREFIX = 'tallenne-test-';

type Cleanup = () => void | Promise<void>;

// vitest loads the runner and the test files through separate module caches, so each has its
// own copy of this module: the list they share lives on globalThis.
const KEY = Symbol.for('tallenne.tests.fileCleanups');
const shared = globalThis as { [KEY]?: Cleanup[] };
const cleanups = (shared[KEY] ??= []);

/** Runs `fn` when the test file ends. */
export function onFileEnd(fn: Cleanup): void {
  cleanups.push(fn);
}

/** A new temp folder `tallenne-test-<label>-XXXXXX`, removed when the test file ends. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${TEMP_PREFIX}${label}-`));
  onFileEnd(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** SIGKILLs `proc` at the end of the test file if it is still running, and waits for it. */
export function trackChild<P extends ChildProcess>(proc: P): P {
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  onFileEnd(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
    proc.kill('SIGKILL');
    await exited;
  });
  return proc;
}

/**
 * Like trackChild for a process started with `detached: true`: its whole process group goes,
 * so helpers it started (a bench's daemons) do not outlive it.
 */
export function trackProcessGroup<P extends ChildProcess>(proc: P): P {
  onFileEnd(() => {
    if (proc.pid === undefined) return;
    try {
      process.kill(-proc.pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  });
  return trackChild(proc);
}

/** Runs every registered cleanup, newest first; all run even if some fail. */
export async function runFileCleanups(): Promise<void> {
  const errors: unknown[] = [];
  while (cleanups.length > 0) {
    try {
      await cleanups.pop()!();
    } catch (e) {
      errors.push(e);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} cleanups failed`);
}
