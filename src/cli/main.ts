/**
 * The `tallenne` command. The only place that owns signals and exit codes.
 *
 *   exit 0  success
 *   exit 1  the action failed (an error is printed)
 *   exit 2  usage error or invalid config (every problem is listed)
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { VERSION } from '../version.js';
import { join } from 'node:path';
import { configPathFrom, loadConfigFile, type LoadedConfig } from '../config/load.js';
import { describeConfig, diffConfig } from '../config/describe.js';
import { ConfigError, TallenneError } from '../errors.js';
import { createLogger } from '../log.js';
import { httpTlsSource, sipTlsSource, tlsFileProblems } from '../tls/material.js';
import { configKeyFileProblems, KeyFileError } from '../secrets/key-file.js';
import { parseArgs, flagString, type CliContext, type CliIo } from './context.js';
import { httpAddressFile } from './calls.js';

const USAGE = `usage: tallenne COMMAND [options]

  run [--config FILE]                 run the recording daemon
  check-config [--config FILE]        check a config file; print the effective config
                                      and what a reload of a running daemon would change
  recordings list|show|export|hold|release|erase|rectify|find-by-number ...
  retention run [--dry-run] | sweep-orphans
  audit list [--json] | verify
  index migrate | copy ...            the PostgreSQL register: schema migrations, moving
                                      an LMDB index into it
  users add|list|disable ...          users of the recordings API and the web page
  tokens create|revoke ...            their API tokens
  keys list|rotate|retire ...         master keys of encryption at rest
  calls list|listen ...               calls in progress, and listening in (through the
                                      running daemon's API, with a token)
  recover --spool-dir DIR             finalise the spools another node left on a shared
                                      spool volume (each under its lease in the register)
  version

Without --config, TALLENNE_CONFIG or the embedded config/tallenne.toml is used.
`;

const io: CliIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

function load(configFlag: string | undefined): LoadedConfig | number {
  const file = configPathFrom(configFlag);
  try {
    return loadConfigFile(file);
  } catch (e) {
    if (e instanceof ConfigError) {
      io.err(e.message);
      return 2;
    }
    if (e instanceof TallenneError) {
      io.err(`tallenne: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

/** Where the daemon records the config it runs with, for check-config's reload preview. */
export function effectiveConfigFile(storageDir: string): string {
  return join(storageDir, 'run', 'effective-config.json');
}

async function checkConfig(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ['json']);
  const loaded = load(flagString(args, 'config'));
  if (typeof loaded === 'number') return loaded;
  const effective = describeConfig(loaded.config);
  io.out(JSON.stringify(effective, null, 2));
  // The TLS and key files as the daemon would read them at start (paths only, never contents).
  const sources = [sipTlsSource(loaded.config), httpTlsSource(loaded.config)].filter((s) => s !== undefined);
  const fileProblems = [...new Set(sources.flatMap((s) => tlsFileProblems(s)))];
  if (fileProblems.length > 0) {
    io.err(new ConfigError(fileProblems, loaded.file).message);
    return 2;
  }
  const loose = configKeyFileProblems(loaded.config);
  if (loose.length > 0) {
    const e = new KeyFileError(loose);
    io.err(`tallenne: ${e.message} (${e.code})`);
    return 2;
  }
  let running: Record<string, unknown> | null = null;
  try {
    running = JSON.parse(readFileSync(effectiveConfigFile(loaded.config.storage.dir), 'utf8')) as Record<string, unknown>;
  } catch {
    running = null;
  }
  if (running) {
    const changes = diffConfig(running, effective);
    if (changes.length === 0) io.err('a reload would change nothing (same as the running daemon)');
    for (const c of changes) {
      io.err(`reload: ${c.path}: ${JSON.stringify(c.before)} -> ${JSON.stringify(c.after)}${c.reloadable ? '' : '  (needs a restart)'}`);
    }
  }
  return 0;
}

async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const loaded = load(flagString(args, 'config'));
  if (typeof loaded === 'number') return loaded;
  const log = createLogger(loaded.config.log.level);
  const { Daemon } = await import('../daemon.js');
  const daemon = new Daemon(loaded, log);
  const record = (l: LoadedConfig) => {
    try {
      const f = effectiveConfigFile(l.config.storage.dir);
      mkdirSync(join(l.config.storage.dir, 'run'), { recursive: true });
      writeFileSync(f, JSON.stringify(describeConfig(l.config), null, 2));
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'cannot record the effective config');
    }
  };
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: stopping now; live calls are recovered as truncated at the next start');
      daemon.destroy().finally(() => process.exit(1));
      return;
    }
    stopping = true;
    log.info({ signal }, 'signal received: graceful stop');
    daemon.close().then(
      () => process.exit(0),
      (err) => {
        log.fatal({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      const next = loadConfigFile(loaded.file);
      const changes = daemon.reload(next);
      record(next);
      log.info({ changed: changes.applied, needRestart: changes.needRestart }, 'config reloaded');
    } catch (e) {
      const problems = e instanceof ConfigError || e instanceof KeyFileError ? e.problems : [(e as Error).message];
      log.error({ problems }, 'config reload rejected; the old config stays in force');
    }
  });
  try {
    const info = await daemon.start();
    record(loaded);
    try {
      writeFileSync(httpAddressFile(loaded.config.storage.dir), JSON.stringify(info.http));
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'cannot record the API address');
    }
  } catch (e) {
    log.fatal({ err: e }, 'start-up failed');
    await daemon.close().catch(() => undefined);
    return e instanceof ConfigError || e instanceof KeyFileError ? 2 : 1;
  }
  await new Promise<never>(() => undefined);
  return 0;
}

type RegisterCommand = 'recordings' | 'retention' | 'audit' | 'index' | 'users' | 'tokens' | 'keys' | 'calls' | 'recover';
const REGISTER_COMMANDS = {
  recordings: () => import('./recordings.js'),
  retention: () => import('./retention.js'),
  audit: () => import('./audit.js'),
  index: () => import('./index-command.js'),
  users: () => import('./users.js'),
  tokens: () => import('./tokens.js'),
  keys: () => import('./keys.js'),
  calls: () => import('./calls.js'),
  recover: () => import('./recover.js'),
} satisfies Record<RegisterCommand, () => Promise<{ run(argv: string[], ctx: CliContext): Promise<number> }>>;

async function dispatchRegister(cmd: RegisterCommand, argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const loaded = load(flagString(args, 'config'));
  if (typeof loaded === 'number') return loaded;
  const ctx: CliContext = { ...io, loaded };
  const mod = await REGISTER_COMMANDS[cmd]();
  return mod.run(argv, ctx);
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run':
      return run(rest);
    case 'check-config':
      return checkConfig(rest);
    case 'recordings':
    case 'retention':
    case 'audit':
    case 'index':
    case 'users':
    case 'tokens':
    case 'keys':
    case 'calls':
    case 'recover':
      return dispatchRegister(cmd, rest);
    case 'version':
    case '--version': {
      io.out(VERSION);
      return 0;
    }
    case 'help':
    case '--help':
    case '-h':
      io.out(USAGE);
      return 0;
    default:
      io.err(cmd ? `tallenne: unknown command "${cmd}"\n\n${USAGE}` : USAGE);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof TallenneError) io.err(`tallenne: ${err.message} (${err.code})`);
    else io.err(`tallenne: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 1;
  },
);
