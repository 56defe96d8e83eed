// GET /healthz: the process answers. Dependencies are checked per request on the path itself.
import { httpHandler, router } from '../runtime/http.ts';

export const healthRoutes = router({
  'GET /healthz': async () => ({ status: 200, body: { ok: true } }),
});

export const handler = httpHandler(healthRoutes);
