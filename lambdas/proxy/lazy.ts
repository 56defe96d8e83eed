// What the gateway needs only on rare paths, each loaded on its first use
// (core/on-first-use.ts), so the proxy function's init loads only what every
// request needs. A load that fails refuses the request that needed it
// (503 gateway_unavailable): nothing is forwarded without the check or the
// step the part makes.
import { partOnFirstUse } from '../core/on-first-use.ts';

const gatewayPart = <T>(part: string, load: () => Promise<T>) => partOnFirstUse('gateway_unavailable', part, load);

/** YAML request bodies (scope reads what a workload references): kubectl and client-go send JSON, and the parser is the largest package on the path. */
export const loadYaml = gatewayPart('the YAML parser', () => import('yaml'));

/** What a change would do, for a plan (dry runs, live objects, YAML, diffs); the approval gate carries its own. */
export const loadPreview = gatewayPart('the change preview', () => import('./preview.ts'));

/** Holding a request for approval: the approval, its preview, its workflow. */
export const loadApprovalGate = gatewayPart('the approval gate', () => import('./approval-gate.ts'));

/** POST /v1/exec: its body's schema, and the WebSocket client that opens the exec stream. */
export const loadExecReader = gatewayPart('the exec request reader', () => import('./stages/read-exec.ts'));
export const loadExecClient = gatewayPart('the exec client', () => import('./exec-client.ts'));

/** POST /mcp: the tools and their schemas. */
export const loadMcpEndpoint = gatewayPart('the MCP endpoint', () => import('../mcp/endpoint.ts'));
