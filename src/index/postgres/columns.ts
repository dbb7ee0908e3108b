/**
 * The looked-up columns of a recording's row, from the same secondary keys the LMDB index
 * keeps (src/index/keys.ts), so both backends index exactly the same values: a value too
 * long to index, an expiry a hold suspends, a purged recording's audio expiry are absent.
 */
import type { RecordingEntry } from '../../types.js';
import { AUDIO_EXPIRY_KIND, DATA_KEY_KIND, LOOKUP_KINDS, METADATA_EXPIRY_KIND, TIME_KIND, keysOf, type LookupField } from '../keys.js';

/** The column of each lookup field of a ListQuery. */
export const LOOKUP_COLUMNS: Readonly<Record<LookupField, string>> = {
  numberHash: 'number_hash',
  groupId: 'group_id',
  agentId: 'agent_id',
  serviceNumber: 'service_number',
  team: 'team',
  status: 'status',
};

/** Every column of the recordings table but the entry itself, in insert order. */
export const INDEXED_COLUMNS = ['start_ms', ...Object.values(LOOKUP_COLUMNS), 'audio_expiry', 'metadata_expiry', 'data_key_id'] as const;

/** The SQL type of each indexed column (times and expiries in epoch ms, the rest text). */
export const COLUMN_TYPES: Readonly<Record<(typeof INDEXED_COLUMNS)[number], 'bigint' | 'text'>> = {
  start_ms: 'bigint', number_hash: 'text', group_id: 'text', agent_id: 'text', service_number: 'text', team: 'text', status: 'text',
  audio_expiry: 'bigint', metadata_expiry: 'bigint', data_key_id: 'text',
};

const KIND_COLUMN: Record<string, string> = {
  [TIME_KIND]: 'start_ms',
  [AUDIO_EXPIRY_KIND]: 'audio_expiry',
  [METADATA_EXPIRY_KIND]: 'metadata_expiry',
  [DATA_KEY_KIND]: 'data_key_id',
  ...Object.fromEntries((Object.keys(LOOKUP_KINDS) as LookupField[]).map((f) => [LOOKUP_KINDS[f], LOOKUP_COLUMNS[f]])),
};

/** The indexed column values of an entry, in INDEXED_COLUMNS order (null: not indexed). */
export function columnValues(e: RecordingEntry): Array<string | number | null> {
  const row: Record<string, string | number> = {};
  for (const k of keysOf(e)) {
    // [kind, value, startMs, id] for lookups, [kind, value, id] for expiries and key ids, [kind, startMs, id] for time.
    row[KIND_COLUMN[k[0] as string]!] = k[1]!;
  }
  return INDEXED_COLUMNS.map((c) => row[c] ?? null);
}
