/**
 * Ctrl-C and SIGTERM, handled once for every operation: the first one aborts the run's signal (its
 * reason is the signal's name, which sets the exit code: 130 or 143), and operations stop at their
 * next safe point. A second one only says that voxops is still finishing, never cuts a worker
 * half-way: a Jenkins abort's SIGKILL follows by itself if that takes too long.
 */
export function stopOnSignals(say: (text: string) => void): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (name: NodeJS.Signals) => {
    count += 1;
    if (!controller.signal.aborted) controller.abort(name);
    say(
      count === 1
        ? `\nvoxops: ${name}: stopping at the next safe point (no worker is left drained; locks are released)\n`
        : `\nvoxops: ${name} again: still finishing the current worker and releasing locks\n`,
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
