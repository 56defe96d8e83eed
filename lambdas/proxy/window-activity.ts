// What an agent has done in a window so far, for approvers (the approval page,
// plan reviews). On its own so that functions showing it (access: plans) do
// not bundle the change preview and its YAML parser.
import type { RecordStore } from '../core/ports.ts';
import type { Grant } from '../core/model.ts';
import type { WindowActivity } from '../core/preview.ts';
import { PREVIEW_USER_AGENT } from './cluster-reader.ts';

const RECENT = 8;

/** What the agent has done in the window so far (a held request leaves itself out). */
export async function windowActivity(of: { agentName: string; connection: string; grant: Grant; requestId?: string }, records: RecordStore): Promise<WindowActivity> {
  const { grant } = of;
  const since = grant.activatedAt ?? grant.requestedAt;
  const page = await records.query({ agent: of.agentName, connection: of.connection, since, limit: 500 });
  // What the agent did: Airlock's own preview calls (dry runs, reads) are recorded, but are not the agent's.
  const mine = page.items.filter((record) => record.grantId === grant.id && record.id !== of.requestId && record.userAgent !== PREVIEW_USER_AGENT);
  const counts: Record<string, number> = {};
  for (const record of mine) counts[record.decision] = (counts[record.decision] ?? 0) + 1;
  return {
    grantId: grant.id,
    reason: grant.reason,
    ...(grant.ticket ? { ticket: grant.ticket } : {}),
    counts,
    recent: mine
      .slice(0, RECENT)
      .map(
        (record) => `${new Date(record.time).toISOString()} ${record.decision} ${record.method} ${record.path}${record.query ? `?${record.query}` : ''}${record.status ? ` → ${record.status}` : ''}`,
      ),
  };
}
