// The OAuth 2.1 shape MCP clients expect of a protected resource: its metadata
// (RFC 9728), the authorization server's metadata (RFC 8414) and a
// client-credentials token endpoint where the agent's own credential — its
// id and key (client_secret_basic / client_secret_post), or on AWS its IAM
// principal (SigV4, /v1/iam/mcp/token) — gets a short-lived MCP token. There
// are no user redirects, no refresh tokens and no dynamic registration: an
// agent is registered by an admin (`airlock agents create`).

export const MCP_TOKEN_PATH = '/v1/mcp/token';
export const MCP_AUTHORIZE_PATH = '/v1/mcp/authorize';

/**
 * The answer of the authorization endpoint to every request: RFC 6749 §4.1.2.1 — no response type is
 * served and no client is registered for one, so the error is shown here and the user agent is never
 * redirected (a redirect to an unregistered redirect_uri would be an open redirect).
 */
export function authorizeRefusal() {
  return {
    status: 400,
    body: {
      error: 'unsupported_response_type',
      error_description: `Airlock has no user authorization step: an agent gets an MCP token with its own credential by client credentials at ${MCP_TOKEN_PATH} (or /v1/iam/mcp/token with SigV4 on AWS)`,
    },
  };
}

function base(publicUrl: string): string {
  return publicUrl.replace(/\/+$/, '');
}

/** RFC 9728: served at /.well-known/oauth-protected-resource/mcp (and without the path). */
export function protectedResourceMetadata(publicUrl: string, resource: string) {
  return {
    resource,
    authorization_servers: [base(publicUrl)],
    bearer_methods_supported: ['header'],
    resource_name: 'Airlock MCP endpoint',
    resource_documentation: 'https://github.com/airlock/airlock#mcp',
  };
}

/** RFC 8414: served at /.well-known/oauth-authorization-server. */
export function authorizationServerMetadata(publicUrl: string) {
  return {
    issuer: base(publicUrl),
    // Required by RFC 8414 (and the SDK's schema) although no response type is served: there is no
    // user-facing authorization step for agents, so this endpoint answers every request with an error
    // (authorizeRefusal) and never redirects.
    authorization_endpoint: `${base(publicUrl)}${MCP_AUTHORIZE_PATH}`,
    token_endpoint: `${base(publicUrl)}${MCP_TOKEN_PATH}`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    response_types_supported: [],
    scopes_supported: ['mcp'],
  };
}

export interface TokenRequestForm {
  grantType: string | undefined;
  clientId: string | undefined;
  clientSecret: string | undefined;
  resource: string | undefined;
}

export function readTokenForm(body: string): TokenRequestForm {
  const form = new URLSearchParams(body);
  for (const name of ['grant_type', 'client_id', 'client_secret', 'resource']) {
    if (form.getAll(name).length > 1) throw new OAuthError(400, 'invalid_request', `more than one ${name}`);
  }
  return {
    grantType: form.get('grant_type') ?? undefined,
    clientId: form.get('client_id') ?? undefined,
    clientSecret: form.get('client_secret') ?? undefined,
    resource: form.get('resource') ?? undefined,
  };
}

/** RFC 6749 §5.2 error. */
export class OAuthError extends Error {
  readonly status: number;
  readonly error: string;
  readonly description: string;

  constructor(status: number, error: string, description: string) {
    super(description);
    this.status = status;
    this.error = error;
    this.description = description;
  }
}
