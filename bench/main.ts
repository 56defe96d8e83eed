// npm run bench [-- proxy | load | size | kubectl]
//   proxy (default): the same requests directly against the test kube-apiserver
//                    and through Airlock (`npm start`'s stack, its own process),
//                    in one run; latency p50/p99, requests/s, ratios; then checks
//                    that every proxied request has exactly one record.
//   load:            N agents x M mixed requests; records == requests, no duplicates, no transcript missing.
//   size:            each Lambda bundle's size and module init time in a fresh Node process.
//   kubectl:         `kubectl get pods -n prod` as a whole process, direct and through Airlock, in turn.
// Figures, not assertions: machines are shared and noisy.
import { runKubectlBench } from './kubectl.ts';
import { runLoadBench } from './load.ts';
import { runProxyBench } from './proxy.ts';
import { runSizeBench } from './size.ts';

const [mode = 'proxy', ...rest] = process.argv.slice(2);
const benches: Record<string, (args: string[]) => Promise<number>> = {
  proxy: runProxyBench,
  load: runLoadBench,
  size: runSizeBench,
  kubectl: runKubectlBench,
};
const bench = benches[mode];
if (!bench) {
  console.error(`usage: npm run bench -- ${Object.keys(benches).join(' | ')}`);
  process.exit(2);
}
process.exit(await bench(rest));
