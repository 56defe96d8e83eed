// Interactive sessions (exec, attach, port-forward, any Upgrade) need a
// connection upgrade (SPDY/WebSocket) that API Gateway cannot carry: refused
// (501) rather than half-served. A refusal by design, recorded as denied. A
// command in a container goes through `airlock exec` (POST /v1/exec), where
// Airlock opens the exec stream itself.
import { describeKubeRequest } from '../../core/kube-request.ts';
import { AirlockError } from '../../core/status.ts';
import type { Scoped } from './context.ts';

const INTERACTIVE_VERBS = new Set(['exec', 'attach', 'portforward']);

export function refuseInteractive({ request, kube }: Scoped): void {
  if (INTERACTIVE_VERBS.has(kube.verb) || request.headers.upgrade) {
    const instead =
      kube.verb === 'exec'
        ? `run the command with \`airlock exec --connection NAME -n ${kube.namespace || 'NAMESPACE'} ${kube.name || 'POD'} -- COMMAND [ARGS...]\` (no TTY; add -c CONTAINER, -i for stdin)`
        : 'use kubectl logs, get and describe, `airlock exec` for a command in a container, or ask for a one-off Job to be approved';
    throw new AirlockError(501, 'interactive_not_supported', `${describeKubeRequest(kube)} needs an interactive (upgraded) connection, which Airlock does not carry; ${instead}`);
  }
}
