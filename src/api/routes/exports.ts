/**
 * Exports: a single recording as WAV or MP3 (sendExport, used by the audio route), and
 * POST /exports, the bulk export of a search as a ZIP of the Ogg Opus files with a
 * manifest.json listing the entries and each file's SHA-256 (for a disclosure to an
 * authority). A bulk export holds at most `[api] max_export` recordings and exactly those
 * the caller may export; each recording in it is audited.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, createReadStream, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import yazl from 'yazl';
import { decide } from '../../access/policy.js';
import { recordingJson } from '../../cli/register.js';
import { exportAudioToFile, EXPORT_CONTENT_TYPES, type ExportFormat } from '../../storage/audio-export.js';
import type { RecordingEntry } from '../../types.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { authorize } from '../authorize.js';
import { errorSchema, filterFields, reasonHeaders, timeParam } from '../schemas.js';
import { auditAllowed, searchQuery } from './recordings.js';
import { actorName } from '../audit.js';

const when = z.union([z.number().int().nonnegative(), timeParam]);

export const bulkExportBody = z.strictObject({
  ...filterFields,
  from: when.optional().describe('Start time, inclusive (date, ISO time or epoch ms)'),
  to: when.optional().describe('Start time, exclusive'),
  reason: z.string().max(1000).optional().describe('Reason (required for maintainer and security; also X-Tallenne-Reason)'),
});

/** Converts into a private temporary file, sends it, deletes it. */
export async function sendExport(deps: ApiDeps, reply: FastifyReply, e: RecordingEntry, format: ExportFormat): Promise<FastifyReply> {
  const dir = join(deps.config().storage.dir, 'tmp');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `export-${randomBytes(12).toString('hex')}.${format}`);
  closeSync(openSync(file, 'wx', 0o600));
  const drop = () => {
    try {
      unlinkSync(file);
    } catch {
      // already gone
    }
  };
  try {
    await exportAudioToFile(deps.store, e, format, file);
  } catch (err) {
    drop();
    deps.log.error({ err: (err as Error).message, recordingId: e.id, format }, 'export conversion failed');
    throw new ApiError('API_EXPORT_FAILED');
  }
  const stream = createReadStream(file);
  stream.on('close', drop);
  return reply
    .header('content-type', EXPORT_CONTENT_TYPES[format])
    .header('content-disposition', `attachment; filename="${e.id}.${format}"`)
    .header('cache-control', 'private, no-store')
    .send(stream);
}

export const exportRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.post(
    '/exports',
    {
      schema: {
        summary: 'Bulk export of a search: a ZIP of the audio with manifest.json (entries and SHA-256 per file)',
        tags: ['audio'],
        body: bulkExportBody,
        headers: reasonHeaders,
        response: { 200: z.any().describe('application/zip'), 400: errorSchema, 403: errorSchema, 422: errorSchema },
      },
    },
    async (request, reply) => {
      const { reason: bodyReason, ...filters } = request.body;
      const allowed = await authorize(deps, request, 'bulk-export', undefined, bodyReason);
      if (filters.number !== undefined) await authorize(deps, request, 'subject-search', undefined, bodyReason);
      const max = deps.config().api.max_export;
      const q = searchQuery(deps, filters);
      const entries: RecordingEntry[] = [];
      let cursor: string | undefined;
      do {
        const page = deps.index.list(q, { limit: 1000, ...(cursor !== undefined ? { cursor } : {}) });
        for (const e of page.items) if (decide(allowed.identity, 'bulk-export', e, { reason: 'checked' }).allow) entries.push(e);
        if (entries.length > max) throw new ApiError('API_TOO_MANY_RECORDINGS', `the search matches more than ${max} recordings you may export; narrow it`);
        cursor = page.nextCursor;
      } while (cursor !== undefined);

      const batch = randomBytes(8).toString('hex');
      await auditAllowed(deps, request, allowed, 'export-bulk', undefined, { batch, count: entries.length, filters: Object.keys(filters).sort().join(',') });
      for (const e of entries) await auditAllowed(deps, request, allowed, 'export', e.id, { batch, format: 'opus' });

      // Audio no longer stored is left out (listed in the manifest without a file); one that
      // does not open fails the export below, as it is read.
      const stored = new Set<string>();
      for (const e of entries) if (e.audioPurgedAt === undefined && (await deps.store.stat(e).catch(() => true)) !== null) stored.add(e.id);
      const zip = new yazl.ZipFile();
      const files: Array<Promise<{ path: string; sha256: string; bytes: number } | null>> = entries.map((e) => {
        if (!stored.has(e.id)) return Promise.resolve(null);
        const path = `audio/${e.id}.opus`;
        const hash = createHash('sha256');
        let bytes = 0;
        // Hashes the bytes on their way into the ZIP (read once).
        const tap = new Transform({
          transform(chunk: Buffer, _enc, cb) {
            hash.update(chunk);
            bytes += chunk.length;
            cb(null, chunk);
          },
        });
        const done = new Promise<{ path: string; sha256: string; bytes: number }>((resolve, reject) => {
          tap.on('end', () => resolve({ path, sha256: hash.digest('hex'), bytes }));
          tap.on('error', reject);
        });
        deps.store.open(e).then(
          (src) => {
            src.on('error', (err) => tap.destroy(err));
            src.pipe(tap);
          },
          (err: Error) => tap.destroy(err),
        );
        // Opus is already compressed: stored, not deflated.
        zip.addReadStream(tap, path, { compress: false, mtime: new Date(e.endedAt) });
        return done;
      });
      // The manifest goes last: its hashes are known once the files have passed through.
      Promise.all(files).then(
        (audio) => {
          const manifest = {
            exportedAt: new Date(deps.now()).toISOString(),
            exportedBy: actorName(allowed.identity),
            role: allowed.role,
            ...(allowed.given !== undefined ? { reason: allowed.given } : {}),
            batch,
            count: entries.length,
            entries: entries.map((e, i) => ({ recording: recordingJson(e), audio: audio[i] ?? null })),
          };
          zip.addBuffer(Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), 'manifest.json');
          zip.end();
        },
        (err: unknown) => {
          deps.log.error({ err: (err as Error).message, batch }, 'bulk export failed while reading audio');
          (zip.outputStream as unknown as Readable).destroy(err as Error);
        },
      );
      return reply
        .header('content-type', 'application/zip')
        .header('content-disposition', `attachment; filename="tallenne-export-${batch}.zip"`)
        .header('cache-control', 'private, no-store')
        .send(zip.outputStream);
    },
  );
};
