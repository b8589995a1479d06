import { all, any, argv, type Step } from '../exec/command.js';

const unitShape = /^[A-Za-z0-9@._-]+$/;

export function isValidUnit(unit: string): boolean {
  return unitShape.test(unit) && !unit.startsWith('-');
}

/**
 * A unit whose new release crash-looped has hit systemd's start limit, and `restart` then refuses
 * (exit 1, start-limit-hit); a rollback must still be able to start the old release.
 */
export function resetAndRestartUnit(unit: string): Step {
  return {
    name: `restart ${unit}`,
    command: all(any(argv('systemctl', 'reset-failed', '--', unit), argv('true')), argv('systemctl', 'restart', '--', unit)),
    timeoutMs: 120_000,
  };
}

export function restartUnit(unit: string): Step {
  return { name: `restart ${unit}`, command: argv('systemctl', 'restart', '--', unit), timeoutMs: 120_000 };
}

/** One line per unit: active, inactive, failed, activating... Exit 3 just means "not all active". */
export function unitStates(units: readonly string[]): Step {
  return {
    name: 'read unit states',
    command: argv('systemctl', 'is-active', '--', ...(units as [string, ...string[]])),
    okExitCodes: [3, 4],
    readOnly: true,
  };
}

export function unitEnabledStates(units: readonly string[]): Step {
  return {
    name: 'read unit enablement',
    command: argv('systemctl', 'is-enabled', '--', ...(units as [string, ...string[]])),
    okExitCodes: [1, 4],
    readOnly: true,
  };
}

export function journalTail(unit: string, lines: number): Step {
  return {
    name: `journal of ${unit}`,
    command: argv('journalctl', '--no-pager', '--output=short-iso', '-n', String(lines), '-u', unit),
    okExitCodes: [1],
    readOnly: true,
  };
}

/** Enable a unit and start it now (a new worker). */
export function enableUnitNow(unit: string): Step {
  return { name: `enable --now ${unit}`, command: argv('systemctl', 'enable', '--now', '--', unit), timeoutMs: 120_000 };
}

/** Stop a unit and keep it from coming back at boot (a removed worker). */
export function disableUnitNow(unit: string): Step {
  return { name: `disable --now ${unit}`, command: argv('systemctl', 'disable', '--now', '--', unit), timeoutMs: 120_000 };
}
