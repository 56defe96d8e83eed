// `airlock mcp` (the stdio bridge) sets the transport's headers from each message: under 2026-07-28
// the method and the name — a tool call's tool, a task method's task id (the Tasks extension routes by it).
import { describe, expect, it } from 'vitest';
import { headersFor } from '../../cli/commands/mcp.ts';

const modern = (method: string, params: Record<string, unknown>) => ({
  jsonrpc: '2.0',
  id: 1,
  method,
  params: { ...params, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
});

describe('airlock mcp headers', () => {
  it('names the tool of a call and the task of a task method under 2026-07-28', () => {
    expect(headersFor(modern('tools/call', { name: 'get' }), undefined)).toMatchObject({ 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'get' });
    expect(headersFor(modern('tasks/get', { taskId: 'tsk_x.y' }), undefined)).toMatchObject({ 'mcp-method': 'tasks/get', 'mcp-name': 'tsk_x.y' });
    expect(headersFor(modern('tools/list', {}), undefined)).not.toHaveProperty('mcp-name');
  });

  it('sends the negotiated version for an initialize-era message, and no routing headers', () => {
    const headers = headersFor({ jsonrpc: '2.0', id: 2, method: 'tasks/get', params: { taskId: 'tsk_x.y' } }, '2025-11-25');
    expect(headers).toMatchObject({ 'mcp-protocol-version': '2025-11-25' });
    expect(headers).not.toHaveProperty('mcp-name');
  });
});
