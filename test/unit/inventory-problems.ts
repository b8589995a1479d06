import { expect } from 'vitest';
import { parseInventory } from '../../src/config/inventory.js';
import { ConfigError } from '../../src/errors.js';

/** The problems an inventory text is refused with; fails the test when it is accepted or refused otherwise. */
export function problemsOf(text: string, environment?: string): string[] {
  try {
    parseInventory(text, '/inv/voxops.yaml', environment);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}
