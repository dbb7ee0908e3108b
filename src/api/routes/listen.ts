/**
 * GET /calls/{id}/listen: a call in progress as Ogg Opus over chunked HTTP, both channels,
 * from a couple of seconds before the request and then about half a second behind the
 * capture (src/encoder/listen-stream.ts). The policy decides who may (`listen`: the roles
 * that see others' calls, within their scope, always with a reason); each listen is audited
 * with the listener and the reason before the first byte. The stream ends when the call
 * ends or the listener goes away, and its follower and encoders go with it.
 */
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ListenStream } from '../../encoder/listen-stream.js';
import { epochNow } from '../../rtp/receiver.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { authorize } from '../authorize.js';
import { errorSchema, idParams, reasonHeaders, reasonQuery } from '../schemas.js';
import { auditAllowed } from './recordings.js';

/** The stream starts this far back, so the listener hears the last moments at once. */
export const LISTEN_BACK_MS = 2000;
/** Audio waiting for a listener that does not read (about 5 minutes at 24 kbit/s): past it the listen stops. */
const MAX_BUFFERED_BYTES = 1 << 20;

export const listenRoutes: FastifyPluginAsyncZod<ApiDeps> = async (app, deps) => {
  app.get(
    '/calls/:id/listen',
    {
      exposeHeadRoute: false,
      schema: {
        summary: 'Listen to a call in progress: Ogg Opus, chunked, until the call ends (reason required)',
        tags: ['calls'],
        params: idParams,
        querystring: reasonQuery,
        headers: reasonHeaders,
        response: { 200: z.any().describe('Ogg Opus (audio/ogg), two channels: customer left, agent right'), 403: errorSchema, 404: errorSchema, 503: errorSchema },
      },
    },
    async (request, reply) => {
      const id = request.params.id;
      const session = deps.calls?.session(id);
      if (!session) throw new ApiError('API_NOT_FOUND', `no call ${id} in progress`);
      const { agentId, team } = session.details;
      const allowed = await authorize(deps, request, 'listen', { id, ...(agentId !== undefined ? { agentId } : {}), ...(team !== undefined ? { team } : {}) });
      if (!deps.listens.begin()) throw new ApiError('API_UNAVAILABLE', 'too many listens at once; try again later');
      const calls = deps.calls!;
      let ended = false;
      const unsubscribe = calls.onEnded(id, () => {
        ended = true;
      });
      const body = new PassThrough();
      const c = deps.config().encoder;
      const stream = new ListenStream({
        spoolPath: session.spool.path,
        fromMs: epochNow() - LISTEN_BACK_MS,
        complexity: c.complexity,
        bitrate: c.bitrate,
        onPage: (page) => {
          if (body.destroyed) return;
          body.write(page);
          if (body.writableLength > MAX_BUFFERED_BYTES) stream.stop();
        },
        // A call that ended before this listen subscribed counts as ended too.
        callEnded: () => ended || calls.session(id) === undefined,
      });
      try {
        await auditAllowed(deps, request, allowed, 'listen', id);
      } catch (e) {
        unsubscribe();
        deps.listens.end();
        throw e;
      }
      reply.raw.on('close', () => stream.stop());
      stream
        .run()
        .catch((err: unknown) => deps.log.warn({ err: (err as Error).message, call: id }, 'live listen stopped on an error'))
        .finally(() => {
          unsubscribe();
          deps.listens.end();
          body.end();
        });
      return reply.type('audio/ogg').header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(body);
    },
  );
};
