// Local email: what SNS email subscriptions do on AWS. One topic; one SQS
// queue per approver subscribed with the same filter policy an email
// subscription has on AWS ({approver: [address]}), so a message reaches only
// its approver. A relay writes each message to AIRLOCK_HOME/outbox/*.eml and
// prints the link. Events (window ended, ...) reach an events queue.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { errorText } from '../lambdas/core/errors.ts';
import type { Notifier } from '../lambdas/core/ports.ts';

export const APPROVAL_TOPIC = 'airlock-approvals';

interface Envelope {
  Subject?: string;
  Message: string;
  Timestamp?: string;
  MessageAttributes?: Record<string, { Value: string }>;
}

export interface MailRelayOptions {
  endpoint: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  outboxDir: string;
  log?: (line: string) => void;
}

export class LocalMailRelay {
  private readonly sns: SNSClient;
  private readonly sqs: SQSClient;
  private readonly options: MailRelayOptions;
  private readonly queues = new Map<string, string>(); // approver (or '#events') -> queue URL
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  topicArn = '';

  constructor(options: MailRelayOptions) {
    this.options = options;
    const client = { region: options.region, endpoint: options.endpoint, credentials: options.credentials };
    this.sns = new SNSClient(client);
    this.sqs = new SQSClient(client);
  }

  async start(): Promise<string> {
    mkdirSync(this.options.outboxDir, { recursive: true });
    this.topicArn = (await this.sns.send(new CreateTopicCommand({ Name: APPROVAL_TOPIC }))).TopicArn!;
    await this.subscribe('#events', 'airlock-events', { event: [{ exists: true }] });
    this.timer = setInterval(() => void this.poll(), 200);
    return this.topicArn;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sns.destroy();
    this.sqs.destroy();
  }

  /** What an admin does on AWS by subscribing an approver's email with a filter policy. */
  async ensureApprover(approver: string): Promise<void> {
    if (this.queues.has(approver)) return;
    const queueName = `airlock-approver-${createHash('sha256').update(approver).digest('hex').slice(0, 16)}`;
    await this.subscribe(approver, queueName, { approver: [approver] });
  }

  private async subscribe(key: string, queueName: string, filterPolicy: Record<string, unknown>): Promise<void> {
    const queueUrl = (await this.sqs.send(new CreateQueueCommand({ QueueName: queueName }))).QueueUrl!;
    const attributes = await this.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }));
    await this.sns.send(
      new SubscribeCommand({
        TopicArn: this.topicArn,
        Protocol: 'sqs',
        Endpoint: attributes.Attributes!.QueueArn!,
        Attributes: { FilterPolicy: JSON.stringify(filterPolicy) },
      }),
    );
    this.queues.set(key, queueUrl);
  }

  /** Wraps the SNS notifier so an approver's subscription exists before their first message. */
  wrap(notifier: Notifier): Notifier {
    return {
      toApprover: async (approver, subject, text, attributes) => {
        await this.ensureApprover(approver);
        await notifier.toApprover(approver, subject, text, attributes);
      },
      event: (type, subject, text, attributes) => notifier.event(type, subject, text, attributes),
    };
  }

  /** Delivers everything waiting now (tests call this instead of waiting for the timer). */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const [key, queueUrl] of this.queues) {
        const received = await this.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, MessageAttributeNames: ['All'] }));
        for (const message of received.Messages ?? []) {
          const envelope = JSON.parse(message.Body ?? '{}') as Envelope;
          if (key === '#events') this.options.log?.(`[airlock] ${envelope.MessageAttributes?.event?.Value ?? 'event'}: ${envelope.Subject ?? ''}`);
          else this.deliver(key, envelope);
          await this.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
        }
      }
    } catch (error) {
      this.options.log?.(`[airlock] mail relay: ${errorText(error, { name: false })}`);
    } finally {
      this.polling = false;
    }
  }

  private deliver(approver: string, envelope: Envelope): void {
    const approvalId = envelope.MessageAttributes?.approvalId?.Value ?? 'message';
    const date = envelope.Timestamp ? new Date(envelope.Timestamp) : new Date();
    const eml = [
      'From: Airlock <airlock@localhost>',
      `To: <${approver}>`,
      `Subject: ${envelope.Subject ?? '(no subject)'}`,
      `Date: ${date.toUTCString()}`,
      `Message-ID: <${approvalId}.${createHash('sha256').update(approver).digest('hex').slice(0, 8)}.${date.getTime()}@airlock.local>`,
      'MIME-Version: 1.0',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: 8bit',
      '',
      envelope.Message,
    ].join('\r\n');
    const file = join(this.options.outboxDir, `${date.toISOString().replace(/[:.]/g, '-')}-${approvalId}-${approver.replace(/[^A-Za-z0-9@._-]/g, '_')}.eml`);
    writeFileSync(file, eml, { mode: 0o600 });
    const link = /https?:\/\/\S+\/approvals\/\S+/.exec(envelope.Message)?.[0];
    this.options.log?.(`[airlock] approval ${approvalId} -> ${approver}: ${link ?? file}`);
  }
}
