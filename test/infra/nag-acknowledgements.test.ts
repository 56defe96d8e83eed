// Every cdk-nag acknowledgement is narrow and earned: synthesized once with
// acknowledgements switched off, each one must match a real finding on the
// construct it was placed on (or below it), every finding must have one, and
// every reason must say something.
import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { synthesize, type NagViolation } from './support.ts';

interface Acknowledgement {
  path: string;
  id: string;
  reason: string;
}

let findings: NagViolation[];
const acknowledgements: Acknowledgement[] = [];
// The real Validations.of, captured before the spy replaces it (plugins still register).
const originalOf = Validations.of.bind(Validations);

beforeAll(() => {
  // Record acknowledgements instead of applying them.
  vi.spyOn(Validations, 'of').mockImplementation((scope: IConstruct) => {
    return {
      addPlugins: (...plugins: Parameters<Validations['addPlugins']>) => originalOf(scope).addPlugins(...plugins),
      acknowledge: (...rules: { id: string; reason: string }[]) => {
        for (const rule of rules) acknowledgements.push({ path: scope.node.path, id: rule.id, reason: rule.reason });
      },
    } as unknown as Validations;
  });
  findings = synthesize({ bundle: false }).violations;
}, 120_000);

afterAll(() => {
  vi.restoreAllMocks();
});

const covers = (acknowledgement: Acknowledgement, finding: NagViolation) =>
  finding.rule === acknowledgement.id && (finding.path === acknowledgement.path || finding.path.startsWith(`${acknowledgement.path}/`));

describe('cdk-nag acknowledgements', () => {
  it('there are findings to acknowledge (the checks ran)', () => {
    expect(findings.length).toBeGreaterThan(10);
    expect(acknowledgements.length).toBeGreaterThan(10);
  });

  it('every finding is acknowledged where it occurs', () => {
    const uncovered = findings.filter((finding) => !acknowledgements.some((acknowledgement) => covers(acknowledgement, finding)));
    expect(uncovered.map((finding) => `${finding.rule} at ${finding.path}`)).toEqual([]);
  });

  it('every acknowledgement matches a finding on its construct (none is broader than needed)', () => {
    const unused = acknowledgements.filter((acknowledgement) => !findings.some((finding) => covers(acknowledgement, finding)));
    expect(unused.map((acknowledgement) => `${acknowledgement.id} at ${acknowledgement.path}`)).toEqual([]);
  });

  it('acknowledges IAM wildcards per finding (IAM4/IAM5 name the policy, action or resource), never a whole rule', () => {
    for (const acknowledgement of acknowledgements) {
      if (/^AwsSolutions-IAM[45]/.test(acknowledgement.id)) expect(acknowledgement.id).toMatch(/^AwsSolutions-IAM[45]\[(Policy|Action|Resource)::.+\]$/);
    }
  });

  it('every acknowledgement has a written reason', () => {
    for (const acknowledgement of acknowledgements) {
      expect(acknowledgement.reason.length, `${acknowledgement.id} at ${acknowledgement.path}`).toBeGreaterThanOrEqual(60);
    }
  });

  it('no acknowledgement is placed on the stack or the app', () => {
    for (const acknowledgement of acknowledgements) expect(acknowledgement.path.split('/').length, acknowledgement.path).toBeGreaterThan(2);
  });
});
