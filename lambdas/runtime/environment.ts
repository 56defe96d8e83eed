// On Lambda: the configuration comes from the function's environment (set by
// the CDK construct, see aws-config.ts) and services are built once per
// container, on first use. Tests and the local stack build their own.
import type { AirlockConfig, Services } from './services.ts';
import { createServices } from './services.ts';
import { configFromEnvironment } from './aws-config.ts';

type ServicesFactory = (config: AirlockConfig) => Promise<Services>;

let configure: () => Promise<AirlockConfig> = configFromEnvironment;
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
  services ??= configure().then(factory);
  // A failed start (e.g. secrets unreadable) is retried on the next request, not cached.
  services.catch(() => (services = undefined));
  return services;
}
