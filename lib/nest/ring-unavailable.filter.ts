import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { throwError, type Observable } from 'rxjs';
import { RingClusterUnavailableError } from '../core/index.js';

/** The JSON body of the 503, shaped like Nest's own HTTP errors. */
export interface RingUnavailableBody {
  statusCode: 503;
  error: 'Service Unavailable';
  message: string;
}

/** What the body says: the cause without the server's addresses, which are no client's business. */
const MESSAGE = 'The cache is unavailable: no Redis node is alive. Try again later.';

/**
 * Answers `503 Service Unavailable` with a JSON body when a request handler lets a
 * `RingClusterUnavailableError` through (every node of a group down, no `onFail`), instead
 * of Nest's 500 and its logged stack: the ring already logs "no node is alive" once per
 * outage. Other errors are not caught here and go on to Nest's handling unchanged.
 *
 * `app.useGlobalFilters(new RingUnavailableFilter())`, or `{ provide: APP_FILTER, useClass:
 * RingUnavailableFilter }`, or `@UseFilters(RingUnavailableFilter)` on a controller. It
 * answers through Express' `status().json()` or Fastify's `code().send()`, so it needs no
 * injection. Outside HTTP (microservices, websockets) the error goes on as it was.
 */
@Catch(RingClusterUnavailableError)
export class RingUnavailableFilter implements ExceptionFilter<RingClusterUnavailableError> {
  catch(error: RingClusterUnavailableError, host: ArgumentsHost): Observable<never> | undefined {
    if (host.getType() !== 'http') return throwError(() => error);
    const body: RingUnavailableBody = {
      statusCode: HttpStatus.SERVICE_UNAVAILABLE,
      error: 'Service Unavailable',
      message: MESSAGE,
    };
    reply(host.switchToHttp().getResponse(), body);
    return undefined;
  }
}

/** The response objects of Express (`status().json()`) and Fastify (`code().send()`). */
interface ExpressResponse {
  status(code: number): { json(body: unknown): unknown };
  json(body: unknown): unknown;
}
interface FastifyReply {
  code(code: number): { send(body: unknown): unknown };
}

function reply(response: ExpressResponse | FastifyReply, body: RingUnavailableBody): void {
  // Fastify's reply has a `status` too, but no `json`.
  if ('json' in response && typeof response.json === 'function') {
    response.status(body.statusCode).json(body);
  } else {
    (response as FastifyReply).code(body.statusCode).send(body);
  }
}
