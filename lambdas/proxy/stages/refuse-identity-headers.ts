// Headers that ask the cluster to treat the request as someone else are refused
// outright: requests always run as the connection's identity.
import { AirlockError } from '../../core/status.ts';
import type { Headed } from './context.ts';

const IDENTITY_HEADER = /^(impersonate-|x-remote-)/;

export function refuseIdentityHeaders({ request, kube }: Headed): void {
  for (const header of Object.keys(request.headers)) {
    // Discovery is answered the same for everyone, so kubectl --as reaches the real
    // request and prints the refusal there (the headers are never forwarded anyway).
    if (IDENTITY_HEADER.test(header) && kube.kind !== 'discovery') {
      throw new AirlockError(403, 'impersonation_refused', `the ${header} header is not allowed through Airlock: requests always run as the connection's identity`);
    }
  }
}
