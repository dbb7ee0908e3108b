/**
 * The API's wire shapes as the page reads them. Nested parts come from the register's own
 * types (src/types.ts), so the page and the index cannot drift apart on them.
 */
import type { RecordingEntry } from '../../src/types.js';
import type { AccessRole } from '../../src/access/roles.js';

/** One recording: the `recordings show --json` shape. */
export interface Recording {
  id: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  status: string;
  customerNumber: string | null;
  serviceNumber: string | null;
  agent: string | null;
  agentId: string | null;
  team: string | null;
  direction: string;
  file: string | null;
  channels: number;
  endReason: string;
  groupId: string | null;
  participants: RecordingEntry['participants'];
  legs: RecordingEntry['legs'];
  pauses: RecordingEntry['pauses'];
  dtmf: RecordingEntry['dtmf'];
  retention: RecordingEntry['retention'] | null;
  hold: RecordingEntry['hold'] | null;
  audioPurgedAt: string | null;
}

export interface RecordingPage {
  items: Recording[];
  nextCursor?: string;
}

/** Per-channel waveform peaks, one min/max pair per `intervalMs`. */
export interface Peaks {
  intervalMs: number;
  durationMs: number;
  channels: Array<{ role: string; min: number[]; max: number[] }>;
}

/** GET /api/v1/me. */
export interface Me {
  name: string;
  roles: AccessRole[];
  agentId?: string;
  teams: string[];
  via: 'token' | 'session' | 'oidc';
  csrfToken?: string;
}

/** One row of GET /api/v1/access-review. */
export interface ReviewRow {
  name: string;
  roles: AccessRole[];
  agentId?: string;
  teams: string[];
  disabled?: boolean;
  expiresAt?: string;
  lastUsedAt?: string;
  unused?: boolean;
  tokens?: number;
}
