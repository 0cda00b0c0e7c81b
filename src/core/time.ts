/**
 * Waiting.
 */
import { InterruptedError, KumoError } from './errors.js';

/**
 * Wait `ms` milliseconds. With a signal, an abort ends the wait at once with the signal's reason
 * (when it is a KumoError) or with what `abortError` makes (an InterruptedError by default).
 */
export function sleep(ms: number, signal?: AbortSignal, abortError: (signal: AbortSignal) => Error = defaultAbortError): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function defaultAbortError(signal: AbortSignal): Error {
  return signal.reason instanceof KumoError ? signal.reason : new InterruptedError();
}
