// Alarms: errors and throttles of every function, 5xx of the API, failed and timed-out
// workflow executions; each notifies the alarm topic, if there is one.
// Like storage.ts, it adds to `scope` directly so logical ids stay as they were.
import { Duration } from 'aws-cdk-lib';
import type * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { FUNCTION_NAMES, type AirlockFunctionName } from './bundling.ts';

export interface AirlockAlarmsProps {
  readonly functions: Readonly<Record<AirlockFunctionName, lambda.Function>>;
  readonly api: apigw.RestApi;
  readonly windowStateMachine: sfn.StateMachine;
  readonly approvalStateMachine: sfn.StateMachine;
  /** @default - no notifications */
  readonly alarmTopic?: sns.ITopic;
}

/** Makes the alarms: any one event in 5 minutes raises them. */
export function createAlarms(scope: Construct, { functions, api, windowStateMachine, approvalStateMachine, alarmTopic }: AirlockAlarmsProps): cloudwatch.Alarm[] {
  const alarms: cloudwatch.Alarm[] = [];
  const period = Duration.minutes(5);
  const add = (id: string, metric: cloudwatch.IMetric, description: string) => {
    const alarm = new cloudwatch.Alarm(scope, id, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    if (alarmTopic) {
      alarm.addAlarmAction(new cwActions.SnsAction(alarmTopic));
      alarm.addOkAction(new cwActions.SnsAction(alarmTopic));
    }
    alarms.push(alarm);
  };
  for (const name of FUNCTION_NAMES) {
    const fn = functions[name];
    const title = name[0]!.toUpperCase() + name.slice(1);
    add(`${title}ErrorsAlarm`, fn.metricErrors({ period, statistic: 'Sum' }), `Airlock ${name} function: unhandled errors`);
    add(`${title}ThrottlesAlarm`, fn.metricThrottles({ period, statistic: 'Sum' }), `Airlock ${name} function: throttled invocations`);
  }
  add('Api5xxAlarm', api.metricServerError({ period, statistic: 'Sum' }), 'Airlock API: 5xx responses (including 503 recorder_unavailable / gateway_unavailable)');
  for (const [title, machine] of [
    ['Window', windowStateMachine],
    ['Approval', approvalStateMachine],
  ] as const) {
    add(`${title}WorkflowFailedAlarm`, machine.metricFailed({ period, statistic: 'Sum' }), `Airlock ${title.toLowerCase()} workflow: failed executions`);
    add(`${title}WorkflowTimedOutAlarm`, machine.metricTimedOut({ period, statistic: 'Sum' }), `Airlock ${title.toLowerCase()} workflow: timed-out executions`);
  }
  return alarms;
}
