// The deployment's settings: `airlock.config.json` (see airlock.config.example.json)
// and/or CDK context (`cdk deploy -c approverEmails=a@x.com,b@x.com`). Context
// keys override the file's, key by key. Everything is checked here, with the
// field named in the error, before any construct exists.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { PRINCIPAL_ARN_PATTERN, ROLE_ARN_PATTERN } from '../lambdas/core/arns.ts';
import { errorText } from '../lambdas/core/errors.ts';
import { EKS_CLUSTER_NAME_PATTERN, EMAIL_PATTERN } from './airlock-props.ts';

const email = z.string().regex(EMAIL_PATTERN, 'an email address');
const principalArn = z.string().regex(PRINCIPAL_ARN_PATTERN, 'an IAM principal ARN (user or role; * wildcards allowed)');
const roleArn = z.string().regex(ROLE_ARN_PATTERN, 'an exact IAM role ARN');
const days = z.number().int().min(1).max(36_500);

/** CloudWatch Logs retention values (days). */
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653] as const;

export const AirlockConfigSchema = z.strictObject({
  /** CloudFormation stack name. */
  stackName: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/)
    .default('AirlockStack'),
  /** Deployment target; default: the CLI's current account and region. */
  account: z
    .string()
    .regex(/^\d{12}$/)
    .optional(),
  region: z
    .string()
    .regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/)
    .optional(),
  approverEmails: z.array(email).default([]),
  eventEmails: z.array(email).default([]),
  agentPrincipalArns: z.array(principalArn).default([]),
  adminPrincipalArns: z.array(principalArn).default([]),
  connectionRoleArns: z.array(roleArn).default([]),
  eksExternalId: z.string().min(2).max(1224).optional(),
  transcriptRetentionDays: days.default(400),
  recordRetentionDays: days.default(400),
  objectLock: z.strictObject({ mode: z.enum(['GOVERNANCE', 'COMPLIANCE']), days }).optional(),
  securityLakeExport: z
    .strictObject({
      bucketName: z.string().min(3).max(63),
      prefix: z.string().max(512),
      providerRoleArn: roleArn.optional(),
      externalId: z.string().min(2).max(1224).optional(),
      periodMinutes: z.number().int().min(5).max(1440).default(60),
    })
    .optional(),
  throttling: z.strictObject({ rateLimit: z.number().positive().optional(), burstLimit: z.number().int().positive().optional() }).optional(),
  logReadLimits: z.strictObject({ limitBytes: z.number().int().positive().optional(), tailLines: z.number().int().positive().optional() }).optional(),
  logRetentionDays: z
    .number()
    .refine((value) => (LOG_RETENTION_DAYS as readonly number[]).includes(value), `one of ${LOG_RETENTION_DAYS.join(', ')}`)
    .default(365),
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  stageName: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,128}$/)
    .default('prod'),
  webAclArn: z.string().startsWith('arn:').optional(),
  alarmEmail: email.optional(),
  serverAccessLogs: z.boolean().default(true),
  apiGatewayCloudWatchRole: z.boolean().default(true),
  /** One connection role (and, by default, EKS access entry) per cluster. */
  eksConnections: z
    .array(
      z.strictObject({
        /** The Airlock connection name the role is for (also its construct id). */
        name: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a connection name (DNS label)'),
        clusterName: z.string().regex(EKS_CLUSTER_NAME_PATTERN, 'an EKS cluster name'),
        kubernetesGroups: z.array(z.string().min(1)).optional(),
        createAccessEntry: z.boolean().optional(),
      }),
    )
    .default([]),
});

export type AirlockConfig = z.infer<typeof AirlockConfigSchema>;
export type AirlockConfigInput = z.input<typeof AirlockConfigSchema>;

const KEYS = Object.keys(AirlockConfigSchema.shape) as (keyof AirlockConfig)[];
const LIST_KEYS = new Set<string>(['approverEmails', 'eventEmails', 'agentPrincipalArns', 'adminPrincipalArns', 'connectionRoleArns']);

/** A `-c key=value` string: JSON when it parses, a comma-separated list for list keys, else the string. */
function contextValue(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const text = value.trim();
  try {
    return JSON.parse(text);
  } catch {
    if (LIST_KEYS.has(key))
      return text === ''
        ? []
        : text
            .split(',')
            .map((item) => item.trim())
            .filter(Boolean);
    return text;
  }
}

export interface ConfigSources {
  /** Reads a context key (an App's `node.tryGetContext`). */
  context: (key: string) => unknown;
  /** Directory the config file is looked for in. @default process.cwd() */
  cwd?: string;
}

/**
 * The configuration: the file named by context `config` (or `airlock.config.json`
 * in the working directory, if present), then context keys on top.
 */
export function loadConfig(sources: ConfigSources): { config: AirlockConfig; file?: string } {
  const explicit = sources.context('config');
  const file = resolve(sources.cwd ?? process.cwd(), typeof explicit === 'string' ? explicit : 'airlock.config.json');
  let fromFile: Record<string, unknown> = {};
  if (existsSync(file)) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${file}: not JSON (${errorText(error, { name: false })})`, { cause: error });
    }
    delete fromFile.$comment;
  } else if (typeof explicit === 'string') {
    throw new Error(`config file ${file} does not exist`);
  }
  const fromContext: Record<string, unknown> = {};
  for (const key of KEYS) {
    const value = sources.context(key);
    if (value !== undefined) fromContext[key] = contextValue(key, value);
  }
  const parsed = AirlockConfigSchema.safeParse({ ...fromFile, ...fromContext });
  if (!parsed.success) {
    const where = existsSync(file) ? `${file} and context` : 'context';
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`);
    throw new Error(`Airlock configuration (${where}) is invalid:\n  ${problems.join('\n  ')}`);
  }
  return { config: parsed.data, file: existsSync(file) ? file : undefined };
}
