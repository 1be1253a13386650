/**
 * Bridges a callback-reporting job to an async iterable: progress is coalesced (the latest wins, so a
 * slow reader never holds the job back or lags behind it), then the job's result ends the stream.
 */
export async function* withProgress<P, R>(
  run: (onProgress: (p: P) => void) => Promise<R>,
): AsyncGenerator<{ progress: P } | { result: R }> {
  let pending: P | undefined;
  let wake: (() => void) | undefined;
  let finished = false;
  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const job = run((p) => {
    pending = p;
    notify();
  }).finally(() => {
    finished = true;
    notify();
  });
  job.catch(() => undefined); // observed below
  for (;;) {
    if (pending !== undefined) {
      const p = pending;
      pending = undefined;
      yield { progress: p };
      continue;
    }
    if (finished) break;
    await new Promise<void>((resolve) => {
      wake = resolve;
    });
  }
  yield { result: await job };
}
