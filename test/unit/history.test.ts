import { describe, expect, it } from 'vitest';
import { parseProgress, type HistoryEntry } from '../../src/commands/state.js';
import { lastKnownGood } from '../../src/engine/history.js';

const entry = (
  action: HistoryEntry['action'],
  from: string | null,
  to: string,
  outcome: HistoryEntry['outcome'] = 'success',
  role = 'fleet',
): HistoryEntry => ({
  at: '',
  host: 'fleet1',
  role,
  action,
  from,
  to,
  outcome,
  durationMs: 1,
  user: 'ci',
});

describe('lastKnownGood', () => {
  it('is the release before the current one', () => {
    const history = [entry('deploy', null, 'v1.4.2'), entry('deploy', 'v1.4.2', 'v1.5.0'), entry('deploy', 'v1.5.0', 'v1.6.0')];
    expect(lastKnownGood(history, 'fleet', 'v1.6.0')).toBe('v1.5.0');
  });

  it('walks further back after a rollback, never forward to the release rolled away from', () => {
    const history = [entry('deploy', 'v1.4.2', 'v1.5.0'), entry('deploy', 'v1.5.0', 'v1.6.0'), entry('rollback', 'v1.6.0', 'v1.5.0')];
    expect(lastKnownGood(history, 'fleet', 'v1.5.0')).toBe('v1.4.2');
  });

  it('ignores failed and rolled-back deploys, same-tag redeploys and other roles', () => {
    const history = [
      entry('deploy', 'v1.4.2', 'v1.5.0'),
      entry('deploy', 'v1.5.0', 'v1.5.1-badhealth', 'rolled-back'),
      entry('deploy', 'v1.5.0', 'v1.5.0'),
      entry('deploy', 'v1.3.0', 'v1.5.0', 'success', 'api'),
    ];
    expect(lastKnownGood(history, 'fleet', 'v1.5.0')).toBe('v1.4.2');
  });

  it('is unknown without history or without a current tag', () => {
    expect(lastKnownGood([], 'fleet', 'v1.5.0')).toBeUndefined();
    expect(lastKnownGood([entry('deploy', 'v1.4.2', 'v1.5.0')], 'fleet', null)).toBeUndefined();
  });
});

describe('a progress record read back from a host', () => {
  const good = { run: 'abc', role: 'fleet', action: 'deploy', from: 'v1.4.2', to: 'v1.5.0', startedAt: '2026-12-03T10:00:00Z' };

  it('is taken when every field has its shape', () => {
    expect(parseProgress(JSON.stringify(good))).toEqual(good);
    expect(parseProgress(JSON.stringify({ ...good, from: null, installed: 'a'.repeat(40) }))).toMatchObject({ installed: 'a'.repeat(40) });
  });

  it.each([
    ['a tag that would become a flag', { to: '--upload-pack=touch /tmp/x' }],
    ['a from that is not a release tag', { from: 'main' }],
    ['an install that is not a commit', { installed: '$(reboot)' }],
    ['no start time', { startedAt: undefined }],
  ])('is ignored with %s', (_, change) => {
    expect(parseProgress(JSON.stringify({ ...good, ...change }))).toBeUndefined();
  });
});
