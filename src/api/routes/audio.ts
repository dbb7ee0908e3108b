/**
 * GET /recordings/{id}/audio: the Ogg Opus file, streamed, with Range (one byte range, 206),
 * Accept-Ranges, a strong ETag and `Cache-Control: private, no-cache` (no shared cache keeps
 * it; the browser revalidates, so the roles are checked again on every use). With
 * `?format=wav|mp3` it is an export instead (roles allowed to export), converted by the
 * same code as `tallenne recordings export`.
 * GET /recordings/{id}/peaks: waveform peaks per channel (see src/api/peaks.ts).
 *
 * A play is audited once per recording per login (session or token), when the first byte of
 * audio is about to be sent, not for every Range request of the player.
 */
import type { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { RecordingEntry } from '../../types.js';
import type { AudioInfo } from '../../storage/audio-store.js';
import { withLocalCopy } from '../../storage/local-copy.js';
import type { TallenneError } from '../../errors.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { authorize, entryOr404 } from '../authorize.js';
import { parseRange } from '../range.js';
import { errorSchema, idParams, peaksSchema, reasonHeaders, reasonParam, reasonQuery } from '../schemas.js';
import { auditAllowed } from './recordings.js';
import { sendExport } from './exports.js';

const audioQuery = z.strictObject({
  format: z.enum(['opus', 'wav', 'mp3']).default('opus').describe('opus: the stored file (seekable); wav, mp3: an export'),
  reason: reasonParam,
});

export const audioRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/recordings/:id/audio',
    {
      // HEAD would run the handler without a body; the player does not need it.
      exposeHeadRoute: false,
      schema: {
        summary: 'The audio: Ogg Opus with Range/206/ETag, or a WAV/MP3 export',
        tags: ['audio'],
        params: idParams,
        querystring: audioQuery,
        headers: reasonHeaders,
        response: {
          200: z.any().describe('The whole file (audio/ogg), or the WAV / MP3 export'),
          206: z.any().describe('The requested byte range (audio/ogg)'),
          304: z.any().describe('Not modified (If-None-Match)'),
          403: errorSchema,
          404: errorSchema,
          410: errorSchema,
          416: errorSchema,
        },
      },
    },
    async (request, reply) => {
      const e = entryOr404(deps, request.params.id);
      if (request.query.format !== 'opus') {
        const allowed = await authorize(deps, request, 'export', e);
        audioInfo(deps, e);
        await auditAllowed(deps, request, allowed, 'export', e.id, { format: request.query.format });
        return sendExport(deps, reply, e, request.query.format);
      }
      const allowed = await authorize(deps, request, 'audio', e);
      const size = (await audioInfo(deps, e)).bytes;
      const etag = `"${e.id}-${size.toString(36)}"`;
      reply.header('accept-ranges', 'bytes').header('etag', etag).header('cache-control', 'private, no-cache').header('vary', 'Cookie, Authorization');
      if (request.headers['if-none-match'] === etag) return reply.code(304).send(null);
      const ifRange = request.headers['if-range'];
      const range = ifRange !== undefined && ifRange !== etag ? { kind: 'full' as const } : parseRange(request.headers.range, size);
      if (range.kind === 'unsatisfiable') {
        reply.header('content-range', `bytes */${size}`);
        throw new ApiError('API_BAD_RANGE', `the file has ${size} bytes`);
      }
      if (deps.audit.firstPlay(allowed.identity, request.sessionKey, e.id)) await auditAllowed(deps, request, allowed, 'play', e.id);
      reply.type('audio/ogg');
      // Plaintext bytes, decrypted chunk by chunk from the store (only the chunks the range needs).
      // The first chunk is decrypted before any header goes out, so a file that does not open
      // gets a clean error instead of a response cut off after its headers.
      const body = await started(deps, e, deps.store.open(e, range.kind === 'partial' ? { start: range.start, end: range.end } : undefined));
      if (range.kind === 'partial') {
        reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`).header('content-length', range.end - range.start + 1);
        return reply.send(body);
      }
      reply.header('content-length', size);
      return reply.send(body);
    },
  );

  app.get(
    '/recordings/:id/peaks',
    {
      schema: {
        summary: 'Waveform peaks: min/max per 20 ms per channel, -1..1 (customer, agent)',
        tags: ['audio'],
        params: idParams,
        querystring: reasonQuery,
        headers: reasonHeaders,
        response: { 200: peaksSchema, 403: errorSchema, 404: errorSchema, 410: errorSchema },
      },
    },
    async (request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply) => {
      const e = entryOr404(deps, request.params.id);
      const allowed = await authorize(deps, request, 'peaks', e);
      await audioInfo(deps, e);
      let text: string;
      try {
        text = await deps.peaks.get({ id: e.id, fileBytes: e.fileBytes }, (use) => withLocalCopy(deps.store, e, use));
      } catch (err) {
        deps.log.error({ err: (err as Error).message, recordingId: e.id }, 'computing peaks failed');
        throw new ApiError('API_EXPORT_FAILED', 'the audio could not be decoded for peaks');
      }
      await auditAllowed(deps, request, allowed, 'peaks', e.id);
      // Sent as the cached JSON text: it was produced from the schema's shape.
      return reply.header('cache-control', 'private, no-cache').type('application/json').serializer((x: unknown) => x as string).send(text);
    },
  );
};

/** Resolves with the opened stream once it has data (or has ended); a read error becomes a logged 500. */
async function started(deps: ApiDeps, e: RecordingEntry, opening: Promise<Readable>): Promise<Readable> {
  let s: Readable | undefined;
  try {
    s = await opening;
    const stream = s;
    await new Promise<void>((resolve, reject) => {
      const ok = (): void => {
        stream.off('error', fail);
        resolve();
      };
      const fail = (err: Error): void => {
        stream.off('readable', ok);
        reject(err);
      };
      stream.once('readable', ok);
      stream.once('error', fail);
    });
  } catch (err) {
    s?.destroy();
    deps.log.error({ err: (err as Error).message, code: (err as TallenneError).code, recordingId: e.id }, 'the audio cannot be decrypted');
    throw new ApiError('API_EXPORT_FAILED', 'the audio could not be read');
  }
  return s;
}

/**
 * The plaintext size of a recording's audio, or 410 when it is no longer stored. A file whose
 * key does not open it is logged and answered 500 (counted by the store).
 */
export async function audioInfo(deps: ApiDeps, e: RecordingEntry): Promise<AudioInfo> {
  if (e.audioPurgedAt !== undefined) throw new ApiError('API_AUDIO_GONE');
  let info: AudioInfo | null;
  try {
    info = await deps.store.stat(e);
  } catch (err) {
    deps.log.error({ err: (err as Error).message, code: (err as TallenneError).code, recordingId: e.id }, 'the audio cannot be decrypted');
    throw new ApiError('API_EXPORT_FAILED', 'the audio could not be read');
  }
  if (info === null) throw new ApiError('API_AUDIO_GONE');
  return info;
}
