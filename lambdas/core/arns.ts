// IAM ARN shapes, one spelling each, for everything that validates an ARN:
// the admin API, the EKS credential provider (and, outside lambdas/, the
// deployment config and construct). Partitions are lower-case: aws, aws-cn, aws-us-gov, ...

/** An exact IAM role ARN; group 1 is the partition. */
export const ROLE_ARN_PATTERN = /^arn:(aws[a-z-]*):iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/;

/** An exact IAM user or role ARN (an agent's principal); group 1 is the partition. */
export const USER_OR_ROLE_ARN_PATTERN = /^arn:(aws[a-z-]*):iam::\d{12}:(?:user|role)\/[\w+=,.@/-]{1,512}$/;

/** An IAM or STS principal ARN as a trust policy names it: `*` wildcards allowed. */
export const PRINCIPAL_ARN_PATTERN = /^arn:aws[a-z-]*:(?:iam|sts)::(?:\d{12}|\*):[\w+=,.@/*-]+$/;
