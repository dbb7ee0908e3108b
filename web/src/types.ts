/**
 * The API's wire shapes as the page reads them: inferred from the API's own zod schemas
 * (src/api/schemas.ts), so the page and the routes cannot drift apart.
 */
import type { z } from 'zod';
import type { listSchema, meSchema, peaksSchema, recordingSchema, reviewSchema, sessionReply } from '../../src/api/schemas.js';

/** One recording: the `recordings show --json` shape. */
export type Recording = z.output<typeof recordingSchema>;
export type RecordingPage = z.output<typeof listSchema>;
/** Per-channel waveform peaks in -1..1, one min/max pair per `intervalMs`. */
export type Peaks = z.output<typeof peaksSchema>;
/** GET /api/v1/me; `csrfToken` comes with a cookie session (after SSO there is no login answer to carry it). */
export type Me = z.output<typeof meSchema>;
export type LoginReply = z.output<typeof sessionReply>;

/** GET /api/v1/access-review. */
export type AccessReview = z.output<typeof reviewSchema>;
