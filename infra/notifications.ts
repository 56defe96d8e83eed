// Notifications: the approval topic (one filtered email subscription per approver, and
// one for window events) and the alarm topic.
// Like storage.ts, it adds to `scope` directly so logical ids stay as they were.
import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';

export interface AirlockNotificationsProps {
  /** Encrypts both topics. */
  readonly key: kms.Key;
  /** @default - none */
  readonly approverEmails?: string[];
  /** @default - none */
  readonly eventEmails?: string[];
  /** @default - no notifications, unless `alarmTopic` is given */
  readonly alarmEmail?: string;
  /** @default - one is created if `alarmEmail` is set */
  readonly alarmTopic?: sns.ITopic;
}

export class AirlockNotifications {
  /** Approval emails: one filtered email subscription per approver. */
  public readonly approvalTopic: sns.Topic;
  /** Alarm notifications, if configured. */
  public readonly alarmTopic?: sns.ITopic;

  constructor(scope: Construct, props: AirlockNotificationsProps) {
    this.approvalTopic = new sns.Topic(scope, 'ApprovalTopic', {
      displayName: 'Airlock approvals',
      masterKey: props.key,
      enforceSSL: true,
    });
    for (const email of props.approverEmails ?? []) {
      this.approvalTopic.addSubscription(
        new subscriptions.EmailSubscription(email, {
          filterPolicy: { approver: sns.SubscriptionFilter.stringFilter({ allowlist: [email] }) },
        }),
      );
    }
    for (const email of props.eventEmails ?? []) {
      this.approvalTopic.addSubscription(new subscriptions.EmailSubscription(email, { filterPolicy: { event: sns.SubscriptionFilter.existsFilter() } }));
    }

    if (props.alarmTopic) {
      this.alarmTopic = props.alarmTopic;
    } else if (props.alarmEmail) {
      const alarmTopic = new sns.Topic(scope, 'AlarmTopic', { displayName: 'Airlock alarms', masterKey: props.key, enforceSSL: true });
      alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
      // CloudWatch publishes alarm notifications to the encrypted topic.
      props.key.addToResourcePolicy(
        new iam.PolicyStatement({
          sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
          principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          resources: ['*'],
          conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(scope).account } },
        }),
      );
      this.alarmTopic = alarmTopic;
    }
  }
}
