import type { RoleDefinition } from '../contract.js';
import { fleetDriver } from './driver.js';
import { fleetObserver } from './observer.js';
import { scaleDriver } from './scale.js';

export const fleetDefinition: RoleDefinition = { role: 'fleet', drivers: [fleetDriver, scaleDriver], observer: fleetObserver };
