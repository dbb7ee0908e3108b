/**
 * What every CLI subcommand gets: parsed flags, the loaded config, and where to write.
 * Subcommands return an exit code (0 ok, 1 failure, 2 usage or config error) and never
 * call process.exit themselves: only src/cli/main.ts does.
 */
import type { LoadedConfig } from '../config/load.js';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export interface CliContext extends CliIo {
  /** The config named by --config (or the default), loaded and checked. */
  readonly loaded: LoadedConfig;
}

/** Minimal flag parser: `--name value`, `--flag` (boolean), positionals kept in order. */
export interface ParsedArgs {
  readonly positionals: string[];
  /** The last value of each flag. */
  readonly flags: Map<string, string | true>;
  /** Every value of each flag, in order, for flags that may repeat (`--field a=1 --field b=2`). */
  readonly repeated: Map<string, string[]>;
}

export function parseArgs(argv: readonly string[], booleanFlags: readonly string[] = []): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  const repeated = new Map<string, string[]>();
  const set = (name: string, value: string | true) => {
    flags.set(name, value);
    if (typeof value === 'string') repeated.set(name, [...(repeated.get(name) ?? []), value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) {
        set(a.slice(2, eq), a.slice(eq + 1));
      } else {
        const name = a.slice(2);
        const next = argv[i + 1];
        if (booleanFlags.includes(name) || next === undefined || next.startsWith('--')) set(name, true);
        else {
          set(name, next);
          i++;
        }
      }
    } else positionals.push(a);
  }
  return { positionals, flags, repeated };
}

export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagAll(args: ParsedArgs, name: string): string[] {
  return args.repeated.get(name) ?? [];
}

/** A list as `--json` (one JSON array) or as one line per item. */
export function printList<T>(args: ParsedArgs, io: CliIo, items: readonly T[], line: (item: T) => string): void {
  if (args.flags.has('json')) io.out(`${JSON.stringify(items, null, 2)}\n`);
  else for (const item of items) io.out(`${line(item)}\n`);
}

/**
 * What a command group answers to a subcommand it does not have: `help` prints its usage
 * (exit 0), nothing or an unknown name prints the usage as an error (exit 2).
 */
export function helpOrUnknown(group: string, sub: string | undefined, usage: string, io: CliIo): number {
  if (sub === 'help' || sub === '--help') {
    io.out(usage);
    return 0;
  }
  io.err(sub === undefined ? usage : `error: unknown command "${group} ${sub}"\n${usage}`);
  return 2;
}
