// On Lambda: the configuration comes from the function's environment (set by
// the CDK construct, see aws-config.ts) and services are built once per
// container, on first use. Tests and the local stack build their own.
import type { Services } from './services.ts';
import { createServices } from './services.ts';
import { configFromEnvironment } from './aws-config.ts';

let services: Promise<Services> | undefined;

export function servicesFromEnvironment(): Promise<Services> {
  services ??= configFromEnvironment().then(createServices);
  // A failed start (e.g. secrets unreadable) is retried on the next request, not cached.
  services.catch(() => (services = undefined));
  return services;
}
