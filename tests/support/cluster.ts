/**
 * A recorder cluster on loopback for a test file: `tallenne` nodes sharing one PostgreSQL
 * register and one S3 bucket (the run's Swift), each reaching S3 through a relay of its own
 * that the test can cut, behind a real Kamailio. Each node keeps its SIP port across a
 * restart (the dispatcher list names it), and its own storage folder, whose spool folder a
 * test can hand to another node's `tallenne recover --spool-dir`.
 *
 * Calls come from the SIPREC sample replay (SampleDialog) through Kamailio, with G.711 tones
 * sent to the ports the recorder answered, so every recording has audio.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, makeConfig, randomRtpRange, startDaemon, type DaemonHandle } from './daemon.js';
import { tempDir } from './cleanup.js';
import { freeUdpPort, type KamailioHandle } from './kamailio.js';
import { SampleDialog } from './sample-replay.js';
import { closeAll, startAll, tonesForAnswer, type TonedLeg } from './legs.js';
import { startRelay, type CuttableRelay, type S3Endpoint } from './swift.js';

const execFileAsync = promisify(execFile);

/** The SIPREC INVITE every cluster call replays (two streams, RFC 7866's own example). */
export const CLUSTER_SAMPLE = 'rfc7866-invite-example.sip';

export interface ClusterSetup {
  readonly s3: S3Endpoint;
  readonly bucket: string;
  /** File holding the register's URL (with its password). */
  readonly indexUrlFile: string;
  /** The number hash key every node shares (a customer number hashes alike on every node). */
  readonly hashKeyFile: string;
}

export class ClusterNode {
  daemon!: DaemonHandle;

  private constructor(
    readonly name: string,
    readonly dir: string,
    readonly sipPort: number,
    readonly relay: CuttableRelay,
    readonly configFile: string,
    private readonly configText: string,
  ) {}

  static async create(name: string, setup: ClusterSetup): Promise<ClusterNode> {
    const dir = tempDir(name);
    const sipPort = await freeUdpPort();
    const relay = await startRelay(setup.s3.endpoint);
    const credentials = join(dir, 's3.credentials');
    writeFileSync(credentials, `[default]\naws_access_key_id = ${setup.s3.accessKeyId}\naws_secret_access_key = ${setup.s3.secretAccessKey}\n`, { mode: 0o600 });
    let text = makeConfig(dir, randomRtpRange(), [
      '[index]', 'backend = "postgres"', `url_file = "${setup.indexUrlFile}"`, 'pool_size = 4',
      '[cluster]', `node_id = "${name}"`,
      '[encoder]', 'workers = 1',
    ].join('\n'));
    text = text
      .replace(/^listen = \["udp:.*$/m, `listen = ["udp:127.0.0.1:${sipPort}", "tcp:127.0.0.1:0"]`)
      .replace(/^hash_key_file = .*$/m, `hash_key_file = "${setup.hashKeyFile}"`)
      .replace('\n[storage]\n', `\n[storage]\nbackend = "s3"\nbucket = "${setup.bucket}"\nprefix = "cluster/"\nendpoint = "${relay.endpoint}"\nregion = "${setup.s3.region}"\nforce_path_style = true\ncredentials_file = "${credentials}"\n`);
    const configFile = join(dir, 'tallenne.toml');
    writeFileSync(configFile, text);
    return new ClusterNode(name, dir, sipPort, relay, configFile, text);
  }

  /** The node's spool folder (what a shared spool volume would hold). */
  get spoolDir(): string {
    return join(this.dir, 'data', 'spool');
  }

  /** Starts (or restarts) the daemon on the same folder, ports and config. */
  async start(): Promise<DaemonHandle> {
    this.daemon = await startDaemon({ dir: this.dir, configText: this.configText });
    return this.daemon;
  }

  /** Rewrites the config with `extra` appended and has the running daemon re-read it (SIGHUP). */
  async reload(extra: string): Promise<void> {
    writeFileSync(this.configFile, `${this.configText}\n${extra}\n`);
    const seen = new Set(this.daemon.logs);
    const reloaded = this.daemon.waitForLog((l) => l.msg === 'config reloaded' && !seen.has(l));
    this.daemon.proc.kill('SIGHUP');
    await reloaded;
  }

  /** `tallenne ARGS --config <this node's config>`; resolves with stdout, rejects on a non-zero exit. */
  async cli(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(process.execPath, [BIN, ...args, '--config', this.configFile], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  }

  async metric(name: string): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${this.daemon.httpPort}/metrics`)).text();
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : NaN;
  }

  async close(): Promise<void> {
    await this.daemon?.kill();
    await this.relay.close();
  }
}

/** One SIPREC call placed through Kamailio. */
export interface ClusterCall {
  readonly callId: string;
  readonly status: number;
  /** The node whose Contact answered (undefined when not answered). */
  readonly node: ClusterNode | undefined;
  /** Epoch ms of the final answer. */
  readonly answeredAt: number;
  /** Stops the audio and sends BYE (through Kamailio, to the node that took it). */
  hangUp(): Promise<number>;
  /** Stops the audio and forgets the call without a BYE (its node was killed). */
  drop(): void;
}

export async function placeCall(kamailio: KamailioHandle, nodes: readonly ClusterNode[]): Promise<ClusterCall> {
  const dialog = new SampleDialog(kamailio.port);
  await dialog.open();
  let legs: TonedLeg[] = [];
  try {
    const res = await dialog.sendSample(CLUSTER_SAMPLE);
    const answeredAt = Date.now();
    const contact = dialog.answeredBy() ?? '';
    const node = nodes.find((n) => contact.includes(`:${n.sipPort}`));
    if (res.status === 200) {
      legs = await tonesForAnswer(res.body.toString());
      startAll(legs);
    }
    return {
      callId: dialog.callId,
      status: res.status,
      node,
      answeredAt,
      async hangUp() {
        closeAll(legs);
        try {
          return (await dialog.request('BYE')).status;
        } finally {
          dialog.close();
        }
      },
      drop() {
        closeAll(legs);
        dialog.close();
      },
    };
  } catch (e) {
    closeAll(legs);
    dialog.close();
    throw e;
  }
}
