// On Lambda: the configuration comes from the function's environment (set by
// the CDK construct, see aws-config.ts) and services are built once per
// container, on first use. Each handler passes the builder of the part it uses
// (services.ts), so its bundle holds nothing more. Tests and the local stack
// build their own.
import { configFromEnvironment } from './aws-config.ts';
import type { AirlockConfig } from './services.ts';

export function servicesFromEnvironment<T>(build: (config: AirlockConfig) => Promise<T>): () => Promise<T> {
  let services: Promise<T> | undefined;
  return () => {
    services ??= configFromEnvironment().then(build);
    // A failed start (e.g. secrets unreadable) is retried on the next request, not cached.
    services.catch(() => (services = undefined));
    return services;
  };
}
