import pLimit from 'p-limit';
import type { Host } from '../config/inventory.js';
import { UnreachableError, VoxopsError } from '../errors.js';
import type { Executor, HostSession } from '../exec/executor.js';

/** Connect to every host up front (in parallel): an unreachable host stops the operation before any change. */
export async function connectAll(executor: Executor, hosts: readonly Host[], parallel = 8): Promise<Map<string, HostSession>> {
  const limit = pLimit(Math.max(1, parallel));
  const unique = [...new Map(hosts.map((h) => [h.name, h])).values()];
  const results = await Promise.allSettled(unique.map((host) => limit(() => executor.connect(host))));
  const sessions = new Map<string, HostSession>();
  const failures: VoxopsError[] = [];
  results.forEach((result, i) => {
    if (result.status === 'fulfilled') sessions.set(unique[i]!.name, result.value);
    else failures.push(asVoxopsError(result.reason, unique[i]!));
  });
  if (failures.length > 0) {
    await closeAll(sessions);
    const first = failures[0]!;
    if (failures.length === 1) throw first;
    throw new UnreachableError(`${failures.length} hosts unreachable: ${failures.map((f) => f.message).join('; ')}`, {
      cause: first,
      ...(first.next ? { next: first.next } : {}),
    });
  }
  return sessions;
}

function asVoxopsError(reason: unknown, host: Host): VoxopsError {
  if (reason instanceof VoxopsError) return reason;
  return new UnreachableError(`${host.name}: ${(reason as Error)?.message ?? String(reason)}`, { cause: reason });
}

export async function closeAll(sessions: Map<string, HostSession>): Promise<void> {
  await Promise.allSettled([...sessions.values()].map((s) => s.close()));
}
