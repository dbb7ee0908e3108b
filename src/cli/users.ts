/**
 * `tallenne users ...`: the access API's local users. Each change is audited with the
 * operator (`--actor`, default the operating-system login).
 *
 *   users add NAME --role ROLE [--role ROLE] [--agent AGENT_ID] [--team TEAM]... [--expires DATE]
 *   users list [--json]
 *   users disable NAME
 */
import { isRole, ROLES, type AccessRole } from '../access/roles.js';
import type { UserDirectory } from '../index/users.js';
import { parseArgs, flagAll, flagString, type CliContext, type ParsedArgs } from './context.js';
import { actorOf, parseTime, UsageError, withRegister } from './register.js';

const USAGE = `usage: tallenne users <command> [--actor NAME]
  add NAME --role ROLE [--role ROLE] [--agent AGENT_ID] [--team TEAM]... [--expires DATE]
           roles: ${ROLES.join(', ')}
  list [--json]
  disable NAME
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  const args = parseArgs(rest, ['json']);
  if (sub === 'add') return withRegister(ctx, (r) => add(args, r.index.users, ctx));
  if (sub === 'list') {
    return withRegister(ctx, async (r) => {
      const users = await r.index.users.listUsers();
      if (args.flags.has('json')) ctx.out(`${JSON.stringify(users, null, 2)}\n`);
      else {
        for (const u of users) {
          const state = u.disabledAt ? 'disabled' : u.expiresAt && Date.parse(u.expiresAt) <= Date.now() ? 'expired' : 'active';
          ctx.out(`${[u.name, u.roles.join(','), u.agentId ?? '-', u.teams.join(',') || '-', state, u.source, u.lastUsedAt ?? 'never used'].join('  ')}\n`);
        }
      }
      return 0;
    });
  }
  if (sub === 'disable') {
    return withRegister(ctx, async (r) => {
      const name = oneName(args);
      const ok = await r.index.users.disableUser(name, { actor: actorOf(args), action: 'user-disable', details: { user: name } });
      if (!ok) {
        ctx.err(`error: no local user ${name}\n`);
        return 1;
      }
      ctx.out(`user ${name} is disabled; their tokens and sessions are refused\n`);
      return 0;
    });
  }
  if (sub === 'help' || sub === '--help') {
    ctx.out(USAGE);
    return 0;
  }
  ctx.err(sub === undefined ? USAGE : `error: unknown command "users ${sub}"\n${USAGE}`);
  return 2;
}

function oneName(args: ParsedArgs): string {
  const [name, extra] = args.positionals;
  if (name === undefined || extra !== undefined) throw new UsageError('give exactly one NAME');
  return name;
}

/** --expires DATE as an ISO time in the future. */
export function expiresFlag(args: ParsedArgs): string | undefined {
  const v = flagString(args, 'expires');
  if (v === undefined) return undefined;
  const t = parseTime(v, 'expires');
  if (t <= Date.now()) throw new UsageError('--expires must be in the future');
  return new Date(t).toISOString();
}

async function add(args: ParsedArgs, users: UserDirectory, ctx: CliContext): Promise<number> {
  const name = oneName(args);
  const roles = flagAll(args, 'role');
  if (roles.length === 0) throw new UsageError(`give at least one --role (${ROLES.join(', ')})`);
  const bad = roles.filter((r) => !isRole(r));
  if (bad.length > 0) throw new UsageError(`unknown role ${bad.join(', ')} (one of: ${ROLES.join(', ')})`);
  const agent = flagString(args, 'agent');
  if (roles.includes('agent') && agent === undefined) throw new UsageError('the agent role needs --agent AGENT_ID (their recordings are those with that agent id)');
  const teams = flagAll(args, 'team');
  const expiresAt = expiresFlag(args);
  try {
    await users.addUser(
      { name, roles: roles as AccessRole[], teams, ...(agent !== undefined ? { agentId: agent } : {}), ...(expiresAt !== undefined ? { expiresAt } : {}) },
      { actor: actorOf(args), action: 'user-add', details: { user: name, roles: roles.join(','), teams: teams.length } },
    );
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  ctx.out(`user ${name} added (${roles.join(', ')}); create a token with: tallenne tokens create ${name}\n`);
  return 0;
}
