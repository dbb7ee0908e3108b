/**
 * One pino root logger, made at start-up and passed down. Personal data and secrets are
 * never logged on purpose; `redact` is the second net for fields that might carry them by
 * mistake (a number, a name; a key, a token, a password, an Authorization or Cookie header).
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

export const REDACT_PATHS = [
  'number', 'customerNumber', 'clearNumber', 'from', 'to', 'aor', 'name', 'displayName',
  '*.number', '*.clearNumber', '*.aor', '*.from', '*.to', '*.displayName',
  ...['key', 'secret', 'token', 'password', 'authorization', 'cookie', 'csrfToken', 'accessToken', 'clientSecret'].flatMap((k) => [k, `*.${k}`]),
  'headers.authorization', 'headers.cookie', '*.headers.authorization', '*.headers.cookie',
];

export function createLogger(level: string, dest?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'tallenne' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    dest ?? pino.destination({ dest: 1, sync: true }),
  );
}

/**
 * Parser messages quote the input they choke on, and a From header may hold a customer's
 * number: hide every run of digits long enough to be one before such text is logged.
 */
export function scrubDigits(text: string): string {
  return text.replace(/\+?\d(?:[\d\s().-]{3,}\d)/g, '[digits]');
}
