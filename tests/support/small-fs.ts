/**
 * A small file system of its own, for tests that must really fill a disk: a loop-mounted ext4
 * image, or a tmpfs where loop devices or mkfs.ext4 are missing. Either needs root
 * (CAP_SYS_ADMIN). It is unmounted and its image deleted when the test file ends
 * (tests/support/cleanup.ts), after the processes started later have been killed.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { onFileEnd } from './cleanup.js';

export type SmallFs = { mounted: true; kind: 'ext4 image' | 'tmpfs' } | { mounted: false; reason: string };

/** Runs a command; null when it succeeded, else why not. */
function run(cmd: string, args: string[]): string | null {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) return `${cmd}: ${r.error.message}`;
  if (r.status !== 0) return `${cmd} ${args.join(' ')}: ${(r.stderr || r.stdout).trim().split('\n')[0] || `exit ${r.status}`}`;
  return null;
}

function unmount(mountpoint: string): void {
  const failed = run('umount', [mountpoint]);
  if (!failed) return;
  // Something still holds it: detach it lazily so the run can go on, and say so.
  run('umount', ['-l', mountpoint]);
  throw new Error(`could not unmount the test file system (${failed}); detached it lazily`);
}

/**
 * Mounts a file system of `sizeMiB` on `mountpoint` (created here; it must be inside a
 * tempDir, whose removal then takes the image `${mountpoint}.img` with it).
 */
export function mountSmallFs(mountpoint: string, sizeMiB: number): SmallFs {
  mkdirSync(mountpoint);
  const image = `${mountpoint}.img`;
  const ext4 =
    run('truncate', ['-s', `${sizeMiB}M`, image]) ??
    run('mkfs.ext4', ['-q', '-F', '-m', '0', image]) ??
    run('mount', ['-o', 'loop', image, mountpoint]);
  if (!ext4) {
    onFileEnd(() => unmount(mountpoint));
    return { mounted: true, kind: 'ext4 image' };
  }
  rmSync(image, { force: true });
  const tmpfs = run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', mountpoint]);
  if (!tmpfs) {
    onFileEnd(() => unmount(mountpoint));
    return { mounted: true, kind: 'tmpfs' };
  }
  return { mounted: false, reason: `${ext4}; ${tmpfs}` };
}
