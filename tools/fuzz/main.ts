/**
 * `npm run fuzz -- --inputs N [--seed S] [--target sip|sdp|...[,...]] [--daemon-share F] [--index I]`
 *
 * Prints the run's JSON summary on stdout; progress and failures go to stderr, each failing
 * input to a JSON file outside the repository (its path is in the summary). Exits 1 when
 * the pass rule fails. `--index I` re-runs input I of the run with that seed alone.
 */
import { runFuzz } from './run.js';
import { TARGET_NAMES, type TargetName } from './targets.js';

function usage(msg: string): never {
  process.stderr.write(`${msg}\nusage: npm run fuzz -- --inputs N [--seed S] [--target ${TARGET_NAMES.join('|')}] [--daemon-share 0.02] [--index I] [--failures DIR]\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]) {
  const o: { inputs: number; seed: number; targets?: TargetName[]; daemonShare: number; index?: number; failuresDir?: string } = {
    inputs: 10_000, seed: 1, daemonShare: 0.02,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[++i];
    if (v === undefined) usage(`${a} needs a value`);
    const n = Number(v);
    switch (a) {
      case '--inputs': if (!Number.isInteger(n) || n < 1) usage('--inputs takes a positive integer'); o.inputs = n; break;
      case '--seed': if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) usage('--seed takes an integer 0..2^32-1'); o.seed = n; break;
      case '--daemon-share': if (!(n >= 0 && n <= 1)) usage('--daemon-share takes a fraction 0..1'); o.daemonShare = n; break;
      case '--index': if (!Number.isInteger(n) || n < 0) usage('--index takes an input number'); o.index = n; break;
      case '--failures': o.failuresDir = v; break;
      case '--target': {
        const names = v.split(',');
        for (const t of names) if (!(TARGET_NAMES as readonly string[]).includes(t)) usage(`unknown target ${t}`);
        o.targets = names as TargetName[];
        break;
      }
      default: usage(`unknown option ${a}`);
    }
  }
  return o;
}

const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
const summary = await runFuzz({ ...args, progress: (line) => process.stderr.write(`${line}\n`) });
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
process.exitCode = summary.pass ? 0 : 1;
