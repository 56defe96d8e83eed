// Vitest global setup: one real kube-apiserver (+ etcd) per test run, for the
// e2e tier. AIRLOCK_E2E=require (CI) turns "cannot start" into a failure;
// AIRLOCK_E2E=skip skips the tier on purpose; otherwise a machine without Go
// skips it with one line saying why.
import type { TestProject } from 'vitest/node';
import { ClusterUnavailableError, down, up, type ClusterInfo } from '../cluster/harness.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo | null;
    clusterSkipReason: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const mode = process.env.AIRLOCK_E2E ?? 'auto';
  if (mode === 'skip') {
    console.log('e2e tier skipped: AIRLOCK_E2E=skip');
    project.provide('cluster', null);
    project.provide('clusterSkipReason', 'AIRLOCK_E2E=skip');
    return undefined;
  }
  try {
    const { info, started } = await up({ ownerPid: process.pid });
    project.provide('cluster', info);
    project.provide('clusterSkipReason', '');
    return started ? () => down({ quiet: true }) : undefined;
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    if (mode === 'require' || !(error instanceof ClusterUnavailableError)) throw error;
    console.log(`e2e tier skipped: ${reason}`);
    project.provide('cluster', null);
    project.provide('clusterSkipReason', reason);
    return undefined;
  }
}
