/**
 * The vitest runner with one addition: when a test file is done (its tests run, skipped or
 * filtered out, or its collection failed) the file's cleanups run (tests/support/cleanup.ts).
 * The file's own afterAll hooks have run by then, so they may still use what is cleaned up.
 */
import { VitestTestRunner } from 'vitest/runners';
import { runFileCleanups } from './cleanup.js';

export default class CleaningRunner extends VitestTestRunner {
  override async onAfterRunFiles(): Promise<void> {
    super.onAfterRunFiles();
    await runFileCleanups();
  }
}
