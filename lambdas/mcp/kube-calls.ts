// How an MCP tool's arguments become Kubernetes API paths: a short table of the
// built-in resources (group, version, scope, kind), and `apiVersion` from the
// agent for anything else. The path is only an address: the gateway parses it
// again and checks it like any /k8s request.
import * as z from 'zod';
import { NAME_PATTERN } from '../core/ids.ts';

interface ResourceInfo {
  group: string;
  version: string;
  namespaced: boolean;
  kind: string;
}

const info = (group: string, version: string, namespaced: boolean, kind: string): ResourceInfo => ({ group, version, namespaced, kind });

/** Built-in resources an agent may name without apiVersion. */
export const BUILTIN_RESOURCES: Readonly<Record<string, ResourceInfo>> = {
  pods: info('', 'v1', true, 'Pod'),
  services: info('', 'v1', true, 'Service'),
  configmaps: info('', 'v1', true, 'ConfigMap'),
  secrets: info('', 'v1', true, 'Secret'),
  events: info('', 'v1', true, 'Event'),
  endpoints: info('', 'v1', true, 'Endpoints'),
  serviceaccounts: info('', 'v1', true, 'ServiceAccount'),
  persistentvolumeclaims: info('', 'v1', true, 'PersistentVolumeClaim'),
  replicationcontrollers: info('', 'v1', true, 'ReplicationController'),
  limitranges: info('', 'v1', true, 'LimitRange'),
  resourcequotas: info('', 'v1', true, 'ResourceQuota'),
  namespaces: info('', 'v1', false, 'Namespace'),
  nodes: info('', 'v1', false, 'Node'),
  persistentvolumes: info('', 'v1', false, 'PersistentVolume'),
  deployments: info('apps', 'v1', true, 'Deployment'),
  replicasets: info('apps', 'v1', true, 'ReplicaSet'),
  statefulsets: info('apps', 'v1', true, 'StatefulSet'),
  daemonsets: info('apps', 'v1', true, 'DaemonSet'),
  jobs: info('batch', 'v1', true, 'Job'),
  cronjobs: info('batch', 'v1', true, 'CronJob'),
  ingresses: info('networking.k8s.io', 'v1', true, 'Ingress'),
  networkpolicies: info('networking.k8s.io', 'v1', true, 'NetworkPolicy'),
  horizontalpodautoscalers: info('autoscaling', 'v2', true, 'HorizontalPodAutoscaler'),
  poddisruptionbudgets: info('policy', 'v1', true, 'PodDisruptionBudget'),
  roles: info('rbac.authorization.k8s.io', 'v1', true, 'Role'),
  rolebindings: info('rbac.authorization.k8s.io', 'v1', true, 'RoleBinding'),
  clusterroles: info('rbac.authorization.k8s.io', 'v1', false, 'ClusterRole'),
  clusterrolebindings: info('rbac.authorization.k8s.io', 'v1', false, 'ClusterRoleBinding'),
  leases: info('coordination.k8s.io', 'v1', true, 'Lease'),
  storageclasses: info('storage.k8s.io', 'v1', false, 'StorageClass'),
  customresourcedefinitions: info('apiextensions.k8s.io', 'v1', false, 'CustomResourceDefinition'),
};

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export const fields = {
  connection: z.string().regex(NAME_PATTERN, 'not a connection name').describe('The Airlock connection (cluster) to act on; you need an open window on it (request_access).'),
  resource: z.string().max(253).regex(DNS_SUBDOMAIN, 'a lowercase plural resource name such as "pods" or "deployments"').describe('Lowercase plural resource, e.g. pods, deployments, configmaps.'),
  apiVersion: z
    .string()
    .max(253)
    .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?v[0-9]+((alpha|beta)[0-9]+)?$/, 'like "v1" or "apps/v1"')
    .describe('group/version, e.g. apps/v1; needed only for resources outside the built-in table.')
    .optional(),
  namespace: z.string().max(63).regex(NAME_PATTERN, 'not a namespace name').describe('Namespace of the object(s).'),
  name: z.string().min(1).max(253).regex(DNS_SUBDOMAIN, 'not an object name').describe('Object name.'),
};

export interface Address {
  resource: string;
  apiVersion?: string | undefined;
  namespace?: string | undefined;
  name?: string | undefined;
  subresource?: string;
}

/** The Kubernetes API path of an object or collection; throws a message naming the field when it cannot be built. */
export function kubePath(address: Address): string {
  const known = BUILTIN_RESOURCES[address.resource];
  let group: string;
  let version: string;
  if (address.apiVersion) {
    const slash = address.apiVersion.indexOf('/');
    group = slash < 0 ? '' : address.apiVersion.slice(0, slash);
    version = slash < 0 ? address.apiVersion : address.apiVersion.slice(slash + 1);
  } else if (known) {
    ({ group, version } = known);
  } else {
    throw new ToolInputError('apiVersion', `"${address.resource}" is not a built-in resource: give its apiVersion (group/version)`);
  }
  if (known && !known.namespaced && address.namespace) throw new ToolInputError('namespace', `${address.resource} are cluster-scoped: leave namespace out`);
  if (known?.namespaced && address.name && !address.namespace) throw new ToolInputError('namespace', `${address.resource} are namespaced: give the namespace`);
  const base = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  const scope = address.namespace ? `/namespaces/${address.namespace}` : '';
  const object = address.name ? `/${address.name}` : '';
  const sub = address.subresource ? `/${address.subresource}` : '';
  return `${base}${scope}/${address.resource}${object}${sub}`;
}

/** A manifest's apiVersion/kind -> its resource (built-ins), or the one the agent named. */
export function resourceForKind(apiVersion: string, kind: string, named: string | undefined): string {
  if (named) return named;
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const match = Object.entries(BUILTIN_RESOURCES).find(([, entry]) => entry.kind === kind && entry.group === group);
  if (!match) throw new ToolInputError('resource', `kind ${kind} (${apiVersion}) is not in the built-in table: give its plural resource name`);
  return match[0];
}

/** Bad tool input found after the schema check (a field that cannot go with another). */
export class ToolInputError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.field = field;
  }
}
