// npm run bench [-- proxy | load | size]
//   proxy (default): the same requests directly against the test kube-apiserver
//                    and through Airlock (`npm start`'s stack, its own process),
//                    in one run; latency p50/p99, requests/s, ratios; then checks
//                    that every proxied request has exactly one record.
// Figures, not assertions: machines are shared and noisy.
import { runProxyBench } from './proxy.ts';

const [mode = 'proxy', ...rest] = process.argv.slice(2);
const benches: Record<string, (args: string[]) => Promise<number>> = {
  proxy: runProxyBench,
};
const bench = benches[mode];
if (!bench) {
  console.error(`usage: npm run bench -- ${Object.keys(benches).join(' | ')}`);
  process.exit(2);
}
process.exit(await bench(rest));
