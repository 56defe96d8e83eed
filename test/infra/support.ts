// Shared by the infra tests: synthesize the app exactly as `cdk synth` does
// (cdk.json's context, the config file, the cdk-nag plugin), once per test file.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import type { AirlockConfigInput } from '../../infra/config.ts';
import { buildApp } from '../../infra/stack.ts';
import type { AirlockStack } from '../../infra/stack.ts';
import { PROJECT_ROOT } from '../../infra/bundling.ts';

/** A deployment with every option the tests look at. */
export const TEST_CONFIG = {
  stackName: 'AirlockTest',
  approverEmails: ['oncall@example.com', 'lead@example.com'],
  agentPrincipalArns: ['arn:aws:iam::111122223333:role/agent-runner', 'arn:aws:iam::111122223333:role/agents/*'],
  adminPrincipalArns: ['arn:aws:iam::111122223333:role/platform-admin'],
  connectionRoleArns: ['arn:aws:iam::444455556666:role/airlock-prod-eu'],
  transcriptRetentionDays: 400,
  recordRetentionDays: 200,
  objectLock: { mode: 'GOVERNANCE', days: 30 },
  throttling: { rateLimit: 25, burstLimit: 50 },
  alarmEmail: 'alarms@example.com',
  eksConnections: [{ name: 'prod', clusterName: 'prod-cluster', kubernetesGroups: ['airlock-agents'] }],
} satisfies AirlockConfigInput;

export interface NagViolation {
  plugin: string;
  rule: string;
  path: string;
  severity: string;
  description: string;
}

export interface Synthesized {
  stack: AirlockStack;
  template: Template;
  json: { Resources: Record<string, { Type: string; Properties?: Record<string, unknown>; [key: string]: unknown }>; Outputs?: Record<string, unknown> };
  outdir: string;
  /** cdk-nag violations left after acknowledgements (empty when the app is clean). */
  violations: NagViolation[];
  /** The synth error, if validation failed. */
  error?: Error;
}

export function cdkJsonContext(): Record<string, unknown> {
  return (JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Record<string, unknown> }).context;
}

interface ValidationReport {
  pluginReports: { pluginName: string; violations: { ruleName: string; description: string; severity: string; violatingConstructs: { constructPath: string }[] }[] }[];
}

export function readViolations(outdir: string): NagViolation[] {
  let report: ValidationReport;
  try {
    report = JSON.parse(readFileSync(join(outdir, 'validation-report.json'), 'utf8')) as ValidationReport;
  } catch {
    return [];
  }
  return report.pluginReports
    .flatMap((plugin) =>
      plugin.violations.flatMap((violation) =>
        violation.violatingConstructs.map((construct) => ({
          plugin: plugin.pluginName,
          rule: violation.ruleName,
          path: construct.constructPath,
          severity: violation.severity,
          description: violation.description,
        })),
      ),
    )
    .filter((violation) => violation.severity !== 'info');
}

/**
 * Synthesizes AirlockStack from a config file in a fresh directory.
 * `bundle: false` skips esbuild (the assertions do not need the bundles).
 */
export function synthesize(options: { config?: AirlockConfigInput; bundle?: boolean } = {}): Synthesized {
  const cwd = mkdtempSync(join(tmpdir(), 'airlock-infra-'));
  writeFileSync(join(cwd, 'airlock.config.json'), JSON.stringify(options.config ?? TEST_CONFIG));
  const outdir = join(cwd, 'cdk.out');
  const context = { ...cdkJsonContext(), ...(options.bundle === false ? { 'aws:cdk:bundling-stacks': [] } : {}) };
  const { app, stack } = buildApp({ context, outdir, cwd });
  let error: Error | undefined;
  try {
    app.synth();
  } catch (caught) {
    error = caught instanceof Error ? caught : new Error(String(caught));
  }
  let json: Synthesized['json'];
  try {
    json = JSON.parse(readFileSync(join(outdir, `${stack.stackName}.template.json`), 'utf8')) as Synthesized['json'];
  } catch {
    throw error ?? new Error('no template was written');
  }
  return { stack, template: Template.fromJSON(json), json, outdir, violations: readViolations(outdir), error };
}

export function formatViolations(violations: NagViolation[]): string {
  return violations.map((violation) => `${violation.severity} ${violation.rule} at ${violation.path}: ${violation.description}`).join('\n');
}

type Resource = Synthesized['json']['Resources'][string];

export function resourcesOfType(synth: Synthesized, type: string): [string, Resource][] {
  return Object.entries(synth.json.Resources).filter(([, resource]) => resource.Type === type);
}

/** The logical id of a construct's CloudFormation resource. */
export function logicalId(synth: Synthesized, construct: { node: { defaultChild?: unknown } }): string {
  return synth.stack.getLogicalId(construct.node.defaultChild as never);
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: unknown;
  Principal?: unknown;
  Condition?: Record<string, Record<string, unknown>>;
}

export const asArray = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** Every identity-policy statement attached to a role (inline Policies and AWS::IAM::Policy resources). */
export function roleStatements(synth: Synthesized, roleLogicalId: string): Statement[] {
  const statements: Statement[] = [];
  const role = synth.json.Resources[roleLogicalId]!;
  for (const policy of asArray(role.Properties?.Policies as { PolicyDocument: { Statement: Statement[] } }[] | undefined)) statements.push(...policy.PolicyDocument.Statement);
  for (const [, policy] of resourcesOfType(synth, 'AWS::IAM::Policy')) {
    const roles = asArray(policy.Properties!.Roles as unknown[]);
    if (roles.some((ref) => JSON.stringify(ref) === JSON.stringify({ Ref: roleLogicalId }))) {
      statements.push(...(policy.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
    }
  }
  return statements;
}

export function actionsOf(statements: Statement[], effect: 'Allow' | 'Deny' = 'Allow'): Set<string> {
  return new Set(statements.filter((statement) => statement.Effect === effect).flatMap((statement) => asArray(statement.Action)));
}
