import type { Step } from '../../exec/command.js';
import { parseHealthProbe, type HealthProbe } from '../../commands/worker.js';
import type { HostContext } from '../contract.js';

/** curl's exit code for "could not connect": nothing listens, so the process holds nothing either. */
export const CURL_COULD_NOT_CONNECT = 7;

export type Probe = HealthProbe & { exitCode: number | null };

/** Run a health probe (over a Unix socket or a URL) and parse its answer; never throws on a bad answer. */
export async function probe(host: Pick<HostContext, 'run'>, step: Step): Promise<Probe> {
  const result = await host.run(step);
  return { ...parseHealthProbe(result.stdout, result.stderr), exitCode: result.exitCode };
}

/**
 * What a worker's gate waits for: healthy, on the expected release, and a process other than the
 * one that was restarted (a socket file, or the old process still answering, proves nothing).
 */
export function passesWorkerGate(p: HealthProbe, expectVersion: string, oldPid: number | undefined): boolean {
  return isHealthy(p) && p.body?.version === expectVersion && (oldPid === undefined || p.body.pid !== oldPid);
}

export function isHealthy(p: HealthProbe): boolean {
  return p.httpStatus === 200 && p.body?.status === 'ok';
}

/** curl's exit code for "timed out": the process accepted the connection and did not answer. */
const CURL_TIMED_OUT = 28;

/** Only a timeout counts towards "hung": a reset or a refused connect is a process coming or going. */
export function timedOut(p: Probe): boolean {
  return p.exitCode === CURL_TIMED_OUT;
}

/** Nothing is listening: a connect failure, as opposed to a slow or failing answer. */
export function nothingListening(p: Probe): boolean {
  return p.exitCode === CURL_COULD_NOT_CONNECT;
}

/** Why a probe is not the answer a gate waits for, in words. */
export function describeProbe(p: Probe, expectVersion: string): string {
  if (p.httpStatus === 0)
    return nothingListening(p) ? 'nothing is listening on the socket' : `no answer (${p.error ?? 'nothing listening'})`;
  if (p.httpStatus !== 200) return `/health answered HTTP ${p.httpStatus}`;
  if (p.body?.version !== expectVersion) return `/health reports version ${p.body?.version ?? '(none)'}, expected ${expectVersion}`;
  return `/health reports status ${p.body?.status ?? '(none)'}`;
}
