// One spelling of each IAM ARN shape (core/arns.ts) for the admin API, the EKS
// credential provider and the deployment config.
import { describe, expect, it } from 'vitest';
import { PRINCIPAL_ARN_PATTERN, ROLE_ARN_PATTERN, USER_OR_ROLE_ARN_PATTERN } from '../../lambdas/core/arns.ts';

describe('ARN patterns', () => {
  it('a role ARN: any lower-case partition, a 12-digit account, a path; the partition is group 1', () => {
    expect(ROLE_ARN_PATTERN.exec('arn:aws-cn:iam::111122223333:role/airlock/prod-eks')?.[1]).toBe('aws-cn');
    for (const bad of ['arn:aws:iam::1:role/x', 'arn:aws:iam::111122223333:user/x', 'arn:AWS:iam::111122223333:role/x', 'arn:aws:sts::111122223333:role/x', 'arn:aws:iam::111122223333:role/*']) {
      expect(ROLE_ARN_PATTERN.test(bad), bad).toBe(false);
    }
  });

  it('an agent principal: an exact IAM user or role', () => {
    expect(USER_OR_ROLE_ARN_PATTERN.test('arn:aws:iam::111122223333:user/ci')).toBe(true);
    expect(USER_OR_ROLE_ARN_PATTERN.test('arn:aws-us-gov:iam::111122223333:role/path/ci')).toBe(true);
    expect(USER_OR_ROLE_ARN_PATTERN.test('arn:aws:iam::111122223333:group/ci')).toBe(false);
  });

  it('a trust-policy principal: IAM or STS, wildcards allowed', () => {
    expect(PRINCIPAL_ARN_PATTERN.test('arn:aws:sts::111122223333:assumed-role/admin/*')).toBe(true);
    expect(PRINCIPAL_ARN_PATTERN.test('arn:aws:iam::*:role/admin')).toBe(true);
    expect(PRINCIPAL_ARN_PATTERN.test('arn:aws:s3:::bucket')).toBe(false);
  });
});
