/**
 * The API's counters, on the daemon's one Prometheus registry: requests by route pattern and
 * status class, and refusals by error code. Labels are route patterns and codes only, never
 * an id, a user or a filter value.
 */
import { Counter, type Registry } from 'prom-client';

export class ApiMetrics {
  private readonly requests: Counter<'route' | 'status'>;
  private readonly errors: Counter<'route' | 'code'>;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: 'tallenne_api_requests_total',
      help: 'API requests answered, by route pattern and status class',
      labelNames: ['route', 'status'],
      registers: [registry],
    });
    this.errors = new Counter({
      name: 'tallenne_api_errors_total',
      help: 'API requests refused or failed, by route pattern and error code',
      labelNames: ['route', 'code'],
      registers: [registry],
    });
  }

  answered(route: string, status: number): void {
    this.requests.inc({ route, status: `${Math.floor(status / 100)}xx` });
  }

  refused(route: string, code: string): void {
    this.errors.inc({ route, code });
  }
}
