/**
 * `Expect: 100-continue`, Swift's way: the node answers "100 Continue" only once a handler has
 * validated the request and is about to read the body, so a request refused on its headers (bad
 * name, full disk, conflict) is answered without the client ever sending its body. main.ts marks
 * such requests (the http server's `checkContinue` event); handlers call `sendContinue`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

const awaitingContinue = new WeakSet<IncomingMessage>();

export function markAwaitingContinue(request: IncomingMessage): void {
  awaitingContinue.add(request);
}

/** Sends "100 Continue" if the client asked for it and has not had it yet. Idempotent. */
export function sendContinue(request: IncomingMessage, response: ServerResponse): void {
  if (!awaitingContinue.has(request)) return;
  awaitingContinue.delete(request);
  if (!response.headersSent && !response.writableEnded) response.writeContinue();
}
