/**
 * `tallenne keys ...`: the master keys of encryption at rest.
 *   list             every key id, whether it is current, and how many recordings it wraps
 *   rotate           a new master key; every data key re-wrapped under it (audio untouched);
 *                    resumes an unfinished rotation instead of starting another
 *   retire ID        removes an old key from the key file once nothing uses it
 * Key material is never printed; ids are not secret.
 */
import { Keyring } from '../crypto/keyring.js';
import { keyUsage, retireKey, rotateKeys, type KeyUsage } from '../crypto/rotation.js';
import { parseArgs, type CliContext } from './context.js';
import { actorOf, UsageError, withRegister, type Register } from './register.js';

const USAGE = `usage: tallenne keys <command> [--actor NAME]
  list [--json]     master key ids, the current one, and how many recordings each wraps
  rotate            add a new master key and re-wrap every data key under it (resumes an unfinished rotation)
  retire ID         remove an old master key from the key file; refused while a recording uses it
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest, ['json']);
  const open = (r: Register): Keyring => Keyring.open(r.config.encryption, { create: r.config.encryption.enabled });
  if (sub === 'list') {
    return withRegister(ctx, async (r) => {
      const usage = await keyUsage(r.index, open(r));
      if (args.flags.has('json')) ctx.out(`${JSON.stringify(usage, null, 2)}\n`);
      else for (const u of usage) ctx.out(`${usageLine(u)}\n`);
      return 0;
    });
  }
  if (sub === 'rotate') {
    return withRegister(ctx, async (r) => {
      const report = await rotateKeys(r.index, open(r), { actor: actorOf(args) });
      ctx.out(`${report.resumed ? 'finished the rotation' : 'rotated'} to master key ${report.to}: ${report.rewrapped} data key(s) re-wrapped\n`);
      for (const f of report.failed) ctx.err(`recording ${f.id}: its data key could not be unwrapped (${f.code})\n`);
      const old = report.usage.filter((u) => !u.current);
      for (const u of old) {
        ctx.out(u.recordings > 0
          ? `master key ${u.keyId} is still used by ${u.recordings} recording(s)${u.held ? '' : ' and is not in the key file'}\n`
          : `master key ${u.keyId} is no longer used: "tallenne keys retire ${u.keyId}" removes it\n`);
      }
      return report.failed.length > 0 ? 1 : 0;
    });
  }
  if (sub === 'retire') {
    const [id, extra] = args.positionals;
    if (id === undefined || extra !== undefined) {
      ctx.err(`error: give exactly one key ID\n${USAGE}`);
      return 2;
    }
    return withRegister(ctx, async (r) => {
      if (!/^[A-Za-z0-9._-]+$/.test(id)) throw new UsageError('that is not a master key id');
      await retireKey(r.index, open(r), id, actorOf(args));
      ctx.out(`master key ${id} is retired (removed from ${r.config.encryption.master_key_file})\n`);
      return 0;
    });
  }
  if (sub === 'help' || sub === '--help') {
    ctx.out(USAGE);
    return 0;
  }
  ctx.err(sub === undefined ? USAGE : `error: unknown command "keys ${sub}"\n${USAGE}`);
  return 2;
}

function usageLine(u: KeyUsage): string {
  const flags = [u.current ? 'current' : '', u.held ? '' : 'MISSING from the key file'].filter(Boolean).join(', ');
  return `${u.keyId}  ${String(u.recordings).padStart(8)} recording(s)${flags ? `  (${flags})` : ''}`;
}
