import type { RoleDefinition } from '../contract.js';
import { ingressDriver } from './driver.js';
import { ingressObserver } from './observer.js';

export const ingressDefinition: RoleDefinition = { role: 'ingress', drivers: [ingressDriver], observer: ingressObserver };
