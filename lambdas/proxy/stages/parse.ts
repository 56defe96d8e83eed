// What the request asks of the API server: verb, group, resource, subresource,
// namespace, name, and the canonical query (core/kube-request.ts). Anything two
// readers could disagree on is refused here (400/405).
import { MAX_QUERY_LENGTH, parseKubeRequest } from '../../core/kube-request.ts';
import type { Authenticated, Parsed } from './context.ts';

export function parse(authenticated: Authenticated): Parsed {
  const { request, record } = authenticated;
  const kube = parseKubeRequest(request.method, request.path, request.query);
  return {
    ...authenticated,
    kube,
    record: {
      ...record,
      query: kube.query.slice(0, MAX_QUERY_LENGTH),
      verb: kube.verb,
      apiGroup: kube.apiGroup,
      resource: kube.resource,
      subresource: kube.subresource,
      namespace: kube.namespace,
      name: kube.name,
    },
  };
}
