// Interactive sessions (exec, attach, port-forward, any Upgrade) need a
// connection upgrade (SPDY/WebSocket) that API Gateway cannot carry: refused
// (501) rather than half-served. A refusal by design, recorded as denied.
import { describeKubeRequest } from '../../core/kube-request.ts';
import { AirlockError } from '../../core/status.ts';
import type { Scoped } from './context.ts';

const INTERACTIVE_VERBS = new Set(['exec', 'attach', 'portforward']);

export function refuseInteractive({ request, kube }: Scoped): void {
  if (INTERACTIVE_VERBS.has(kube.verb) || request.headers.upgrade) {
    throw new AirlockError(
      501,
      'interactive_not_supported',
      `${describeKubeRequest(kube)} needs an interactive (upgraded) connection, which Airlock does not carry; use kubectl logs, get and describe, or ask for a one-off Job to be approved`,
    );
  }
}
