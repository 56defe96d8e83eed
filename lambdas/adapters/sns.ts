// SNS: one topic; each approver's email subscription filters on the
// `approver` message attribute, so each approver receives only their own
// message with their own signed link.
import { PublishCommand, SNSClient, type SNSClientConfig } from '@aws-sdk/client-sns';
import { DependencyUnavailableError, errorText } from '../core/errors.ts';
import type { Notifier } from '../core/ports.ts';

export class SnsNotifier implements Notifier {
  private readonly sns: SNSClient;
  private readonly topicArn: string;

  constructor(sns: SNSClient, topicArn: string) {
    this.sns = sns;
    this.topicArn = topicArn;
  }

  private async publish(subject: string, text: string, attributes: Record<string, string>): Promise<void> {
    try {
      await this.sns.send(
        new PublishCommand({
          TopicArn: this.topicArn,
          // SNS subjects: ASCII, ≤ 100 characters, no line breaks.
          Subject: subject.replace(/[^\x20-\x7e]/g, '?').slice(0, 100),
          Message: text,
          MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([name, value]) => [name, { DataType: 'String', StringValue: value }])),
        }),
      );
    } catch (error) {
      throw new DependencyUnavailableError('notifier', `SNS Publish to ${this.topicArn} failed: ${errorText(error)}`, { cause: error });
    }
  }

  toApprover(approver: string, subject: string, text: string, attributes: Record<string, string>): Promise<void> {
    return this.publish(subject, text, { ...attributes, approver });
  }

  event(type: string, subject: string, text: string, attributes: Record<string, string>): Promise<void> {
    return this.publish(subject, text, { ...attributes, event: type });
  }
}

/** The adapter with its own client: the functions load this module on first use (runtime/core-services.ts). */
export function snsNotifier(clientConfig: SNSClientConfig, topicArn: string): SnsNotifier {
  return new SnsNotifier(new SNSClient(clientConfig), topicArn);
}
