/**
 * `npm run fuzz -- --inputs N [--seed S] [--target sip|sdp|...[,...]] [--daemon-share F] [--index I] [--shards K]`
 *
 * Prints the run's JSON summary on stdout; progress and failures go to stderr, each failing
 * input to a JSON file outside the repository (its path is in the summary). Exits 1 when
 * the pass rule fails. `--index I` re-runs input I of the run with that seed alone.
 * `--shards K` splits the inputs into K ranges run by K processes (one of them feeds the
 * daemon, its share raised K-fold): the same inputs as one process would run, sooner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mergeSummaries, runFuzz, type FuzzSummary } from './run.js';
import { TARGET_NAMES, type TargetName } from './targets.js';

function usage(msg: string): never {
  process.stderr.write(`${msg}\nusage: npm run fuzz -- --inputs N [--seed S] [--target ${TARGET_NAMES.join('|')}] [--daemon-share 0.02] [--index I] [--failures DIR]\n`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]) {
  const o: { inputs: number; seed: number; targets?: TargetName[]; daemonShare: number; index?: number; failuresDir?: string; shards: number; from?: number; to?: number } = {
    inputs: 10_000, seed: 1, daemonShare: 0.02, shards: 1,
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
      case '--shards': if (!Number.isInteger(n) || n < 1 || n > 16) usage('--shards takes 1..16'); o.shards = n; break;
      case '--range': { // internal: one shard's inputs, FROM:TO
        const [from, to] = v.split(':').map(Number);
        if (!Number.isInteger(from) || !Number.isInteger(to)) usage('--range takes FROM:TO');
        o.from = from;
        o.to = to;
        break;
      }
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

/** Runs one shard as a child process (the same runner this process was started with). */
function shard(k: number, args: ReturnType<typeof parseArgs>): Promise<FuzzSummary> {
  const from = Math.floor((args.inputs * k) / args.shards);
  const to = Math.floor((args.inputs * (k + 1)) / args.shards);
  const argv = ['--inputs', String(args.inputs), '--seed', String(args.seed), '--range', `${from}:${to}`,
    '--daemon-share', String(k === 0 ? Math.min(1, args.daemonShare * args.shards) : 0)];
  if (args.targets) argv.push('--target', args.targets.join(','));
  if (args.failuresDir) argv.push('--failures', args.failuresDir);
  const child = spawn(process.execPath, [process.argv[1]!, fileURLToPath(import.meta.url), '--', ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  return new Promise((resolve, reject) => child.on('exit', (code) => {
    try {
      resolve(JSON.parse(out) as FuzzSummary);
    } catch {
      reject(new Error(`shard ${k} exited ${code} without a summary`));
    }
  }));
}

const children: ChildProcess[] = [];
// However this process ends (a shard that failed to start included), no shard outlives it.
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
});
// A signal ends the run through process.exit, so that the runs' exit handlers clean up; the
// shards get the same signal.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of children) c.kill(sig);
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

const args = parseArgs(process.argv.slice(2).filter((a) => a !== '--'));
const progress = (line: string): void => void process.stderr.write(`${line}\n`);
const summary = args.shards > 1 && args.index === undefined
  ? mergeSummaries(await Promise.all(Array.from({ length: args.shards }, (_, k) => shard(k, args))))
  : await runFuzz({ ...args, progress });
process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
process.exitCode = summary.pass ? 0 : 1;
