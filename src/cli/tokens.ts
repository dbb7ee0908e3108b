/**
 * `tallenne tokens ...`: API tokens of local users. `create` prints the new token alone on
 * stdout (only its hash is stored: it cannot be shown again); `revoke` takes the token id
 * (the part between the dots, also printed on stderr at creation and shown by the access
 * review). Each is audited.
 *
 *   tokens create NAME [--expires DATE]
 *   tokens revoke TOKEN_ID
 */
import { helpOrUnknown, parseArgs, type CliContext } from './context.js';
import { actorOf, UsageError, withRegister } from './register.js';
import { expiresFlag } from './users.js';

const USAGE = `usage: tallenne tokens <command> [--actor NAME]
  create NAME [--expires DATE]   print a new API token for user NAME (shown once)
  revoke TOKEN_ID                refuse the token from now on
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest);
  const [target, extra] = args.positionals;
  if (sub === 'create' || sub === 'revoke') {
    return withRegister(ctx, async (r) => {
      if (target === undefined || extra !== undefined) throw new UsageError(sub === 'create' ? 'give exactly one NAME' : 'give exactly one TOKEN_ID');
      const actor = actorOf(args);
      if (sub === 'create') {
        const expiresAt = expiresFlag(args);
        let made;
        try {
          made = await r.index.users.createToken(target, expiresAt, { actor, action: 'token-create', details: { user: target } });
        } catch (e) {
          ctx.err(`error: ${(e as Error).message}\n`);
          return 1;
        }
        ctx.out(`${made.token}\n`);
        ctx.err(`token ${made.record.id} for ${target}${expiresAt ? `, expires ${expiresAt}` : ''}; it is shown only now\n`);
        return 0;
      }
      const revoked = await r.index.users.revokeToken(target, { actor, action: 'token-revoke', details: { tokenId: target } });
      if (!revoked) {
        ctx.err(`error: no token ${target}\n`);
        return 1;
      }
      ctx.out(`token ${target} (user ${revoked.user}) is revoked\n`);
      return 0;
    });
  }
  return helpOrUnknown('tokens', sub, USAGE, ctx);
}
