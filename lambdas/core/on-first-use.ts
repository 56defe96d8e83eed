// A part loaded on its first use, not at start. In the Lambda bundles
// (infra/bundling.ts: esbuild code splitting) each import() is a chunk of its
// own, so what a function needs only on a rare path is not in its init; the
// first request that takes the path pays the load once (`npm run bench -- size`
// measures both). A load that fails is the caller's error (`failed`), never
// cached: the next use tries again.
import { errorText } from './errors.ts';
import { AirlockError } from './status.ts';

export function onFirstUse<T>(load: () => Promise<T>, failed: (error: unknown) => Error): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () =>
    (loading ??= load().catch((error: unknown) => {
      loading = undefined;
      throw failed(error);
    }));
}

/** onFirstUse for a part a request needs: a load that fails refuses that request (503 `code`). */
export function partOnFirstUse<T>(code: string, part: string, load: () => Promise<T>): () => Promise<T> {
  return onFirstUse(
    load,
    (error) => new AirlockError(503, code, `Airlock could not load ${part} (${errorText(error, { name: false })}), so the request was refused; nothing was forwarded or changed`),
  );
}
