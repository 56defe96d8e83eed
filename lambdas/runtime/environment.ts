// On Lambda: the configuration comes from the function's environment (set by
// the CDK construct) and services are built once per container, on first use.
import type { AirlockConfig, Services } from './services.ts';
import { createServices } from './services.ts';

type ServicesFactory = (config: AirlockConfig) => Promise<Services>;

let configure: (() => Promise<AirlockConfig>) | undefined;
let factory: ServicesFactory = (config) => createServices(config);
let services: Promise<Services> | undefined;

/**
 * Registers how this process builds its configuration. The AWS entry points
 * register the environment reader; the local stack registers its own.
 */
export function setConfigurationSource(source: () => Promise<AirlockConfig>, build?: ServicesFactory): void {
  configure = source;
  if (build) factory = build;
  services = undefined;
}

export function servicesFromEnvironment(): Promise<Services> {
  if (!configure) return Promise.reject(new Error('no configuration source registered'));
  services ??= configure().then(factory);
  // A failed start (e.g. secrets unreadable) is retried on the next request, not cached.
  services.catch(() => (services = undefined));
  return services;
}
