// Bundled in place of @aws-sdk/credential-provider-node (infra/bundling.ts
// `alias`), never imported directly. Every SDK client's runtime config imports
// that package's `defaultProvider` (the whole chain: env, SSO, INI, process,
// web identity, container, IMDS — with the STS/SSO clients they need, ~100 KB
// per bundle). On Lambda the chain always stops at its first link: the runtime
// puts the function role's credentials in AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. So the bundle keeps only that
// link; the credentials used are the same (also as the master credentials of
// fromTemporaryCredentials in security-lake-export, which take the same chain).
// Outside Lambda (tests, the local stack) nothing is aliased and the full
// chain runs.
// The link's own package, not the @aws-sdk/credential-providers barrel: in a bundle built with code
// splitting every import() in the barrel's other providers would become a chunk of the asset.
import { fromEnv } from '@aws-sdk/credential-provider-env';

type FromEnvInit = Parameters<typeof fromEnv>[0];

export const defaultProvider = (init?: FromEnvInit) => fromEnv(init);
