import { RingClusterUnavailableError, RingError } from '../errors.js';
import type { RingMembership } from './ring-membership.js';
import { isConnectionError, RingConnectionError } from '../node/connection-errors.js';
import type { RingNode } from '../node/ring-node.js';

/**
 * Marks `onFail`'s answer on its way through the routing code, so it cannot be mistaken for
 * a reply; `lastError` is the last node's failure, for the error thrown without `onFail`.
 */
export const FAIL = Symbol('ring-redis.fail');
export type Fail<F> = { [FAIL]: F; lastError: unknown };

/** The answer of a request no node could serve: `onFail`'s. */
export function answerFail<F>(fail: Fail<F>): F {
  return fail[FAIL];
}

export function isFail<F>(value: unknown): value is Fail<F> {
  return typeof value === 'object' && value !== null && FAIL in value;
}

/**
 * What a request, a batch or a scan answers when it cannot be served: closed, or no node
 * left (`onFail`'s answer, else `RingClusterUnavailableError` naming why each node is out,
 * scrubbed of every credential).
 */
export class RingFailures<F> {
  constructor(
    private readonly membership: RingMembership,
    /** The dict's name, for messages. */
    private readonly name: string,
    /** `onFail` bound to the dict, if given. */
    private readonly onFail: (() => F) | undefined,
  ) {}

  closedError(): RingError {
    return new RingError(`RingDict "${this.name}" is closed`);
  }

  /** No node could serve a request whose last node failed with `lastError`. */
  fail(lastError: unknown): Fail<F> {
    // The nodes failed because close() dropped their connections: that is what the caller
    // must hear, not that the cluster is down (and not onFail's answer).
    if (this.membership.closed) throw this.closedError();
    this.membership.signalUnavailable();
    // The error is built only when thrown: with onFail, an outage answers at full speed.
    if (this.onFail) return { [FAIL]: this.onFail(), lastError };
    throw this.unavailableError(lastError);
  }

  /** The answer of a request no node could serve, for `readThroughRaw`: the error. */
  readonly rejectFail = (fail: Fail<unknown>): never => {
    throw this.unavailableError(fail.lastError);
  };

  /**
   * What a scan (size, keys, entries, clear) does with a node that failed it. Closed
   * meanwhile: the call fails as closed, as what it counted, listed or cleared so far is not
   * the answer. A reply error is the caller's. A connection error ejects the node, and the
   * scan goes on without it.
   */
  ejectFromScan(node: RingNode, error: unknown): void {
    if (this.membership.closed) throw this.closedError();
    if (!isConnectionError(error)) throw error;
    this.membership.eject(node, error);
  }

  /** Why a request found no node to answer it: each node's last error, scrubbed. */
  private unavailableError(lastError: unknown): RingClusterUnavailableError {
    // Each node's last error says why it is out: refused, timed out, authentication failed…
    const why = this.membership
      .nodeStates()
      .map((state) => `${state.name}: ${state.lastError ?? 'not reached'}`)
      .join('; ');
    // Never the raw ioredis error: an AUTH reply error carries the command and its password.
    const cause =
      lastError instanceof Error
        ? new RingConnectionError(this.scrub(lastError.message))
        : undefined;
    // Nodes that failed this request may be back by now (rediscovered meanwhile): then the
    // request, not the cluster, is what every node failed — a value too big to move within
    // commandTimeout, say.
    const what =
      this.membership.aliveHash.size === 0 ? 'no node is alive' : 'every node failed this request';
    return new RingClusterUnavailableError(`RingDict "${this.name}": ${what} (${why})`, cause);
  }

  /** `message` without any configured node's credentials. */
  private scrub(message: string): string {
    for (const node of this.membership.all()) {
      for (const secret of node.address.secrets) message = message.split(secret).join('***');
    }
    return message;
  }
}
