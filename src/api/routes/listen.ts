/**
 * GET /calls/{id}/listen: a call in progress as Ogg Opus over chunked HTTP, both channels,
 * from a couple of seconds before the request and then about half a second behind the
 * capture. The stream is encoded on an encoder thread (src/encoder/listen-stream.ts, through
 * the pool), with the call's own job: its settings and, on a sealed spool, its key. The
 * policy decides who may (`listen`: the roles that see others' calls, within their scope,
 * always with a reason); each listen is audited with the listener and the reason before the
 * first byte.
 *
 * The stream ends cleanly when the call ends. When the listener goes away the worker stops
 * at once. A listener that does not take the pages (they stay in this response's buffer) is
 * cut off by the worker once a window of bytes waits, and the connection is closed; each end
 * is counted by reason and logged.
 */
import { PassThrough } from 'node:stream';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { ListenHandle } from '../../encoder/pool.js';
import type { ListenEnd } from '../../encoder/listen-stream.js';
import { epochNow } from '../../rtp/receiver.js';
import type { ApiDeps } from '../deps.js';
import { ApiError } from '../errors.js';
import { authorize } from '../authorize.js';
import { errorSchema, idParams, reasonHeaders, reasonQuery } from '../schemas.js';
import { auditAllowed } from './recordings.js';

/** The stream starts this far back, so the listener hears the last moments at once. */
export const LISTEN_BACK_MS = 2000;

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
      if (!session || !deps.listen) throw new ApiError('API_NOT_FOUND', `no call ${id} in progress`);
      const { agentId, team } = session.details;
      const allowed = await authorize(deps, request, 'listen', { id, ...(agentId !== undefined ? { agentId } : {}), ...(team !== undefined ? { team } : {}) });
      if (!deps.listens.begin()) throw new ApiError('API_UNAVAILABLE', 'too many listens at once; try again later');
      const calls = deps.calls!;
      const log = deps.log.child({ call: id });
      const body = new PassThrough();
      let handle: ListenHandle | null = null;
      let callOver = false;
      const unsubscribe = calls.onEnded(id, () => {
        callOver = true;
        handle?.callEnded();
      });
      const ended = (end: ListenEnd): void => {
        unsubscribe();
        deps.listens.end(end.reason);
        const fields = { reason: end.reason, bytes: end.bytes, frames: end.frames, ...(end.thread !== undefined ? { thread: end.thread } : {}) };
        if (end.reason === 'failed') log.warn({ ...fields, code: end.code, err: end.message }, 'live listen stopped on an error');
        else if (end.reason === 'too_slow') log.warn(fields, 'live listen cut off: the listener did not take the audio as fast as it came');
        else log.info(fields, 'live listen ended');
        // Only the call's end is a complete stream; otherwise the listener sees it cut short.
        if (end.reason === 'call_ended') body.end();
        else body.destroy();
      };
      try {
        handle = await deps.listen.open(id, epochNow() - LISTEN_BACK_MS, {
          // The page's buffer was moved from the encoder thread; it leaves this side once the
          // response has taken it.
          page: (page, sent) => {
            if (!body.destroyed) body.write(page, () => sent());
          },
          end: ended,
        });
      } catch (e) {
        unsubscribe();
        deps.listens.end('failed');
        throw e;
      }
      if (!handle) {
        unsubscribe();
        deps.listens.end('call_ended');
        throw new ApiError('API_NOT_FOUND', `no call ${id} in progress`);
      }
      // A call that ended before this listen subscribed counts as ended too.
      if (callOver || calls.session(id) === undefined) handle.callEnded();
      // The listener may go at any time from here, even before the first byte.
      const running = handle;
      reply.raw.on('close', () => running.stop());
      if (request.raw.socket.destroyed) running.stop();
      try {
        await auditAllowed(deps, request, allowed, 'listen', id);
      } catch (e) {
        running.stop();
        throw e;
      }
      return reply.type('audio/ogg').header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(body);
    },
  );
};
