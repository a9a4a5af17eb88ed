import { randomBytes } from 'node:crypto';

/** 72 random bits per process: ids of two processes never meet. */
const PROCESS_ID = randomBytes(9).toString('base64url');
let counter = 0;

/** An id unique across processes and within this one (tag versions, lock tokens). */
export function uniqueId(): string {
  return `${PROCESS_ID}.${(counter++).toString(36)}`;
}
