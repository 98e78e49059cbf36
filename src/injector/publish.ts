import type { ConfirmPublisher } from '../core/amqp';
import { asError, within } from '../core/async';
import { buildJobMessage } from '../core/messages';
import type { MessageSigner } from '../core/signing';
import { EXCHANGE } from '../core/topology';
import type { PlannedRun } from './plan';

/**
 * Publish a batch of runs the way a pipelined producer does: every message
 * is sent at once and the confirms are awaited together, so a batch costs
 * one round trip to the broker, not one per message.
 */

export interface PublishOutcome {
  /** The broker took them and routed them to a queue. */
  confirmed: PlannedRun[];
  /** The broker took them but no queue is bound for their routing key (mandatory return). */
  unroutable: PlannedRun[];
  /** Nacked, channel lost, or no confirm in time: the broker may not have them. */
  failed: PlannedRun[];
  firstError: Error | undefined;
}

export function jobMessageBody(run: PlannedRun): Buffer {
  return Buffer.from(
    JSON.stringify(
      buildJobMessage({
        runId: run.runId,
        jobId: run.jobId,
        name: run.jobName,
        command: run.command,
        timeoutSeconds: run.timeoutSeconds,
        scheduledFor: run.scheduledFor,
        trigger: run.trigger,
        startBy: run.startBy ?? null,
        attempt: run.attempt,
      }),
    ),
  );
}

export async function publishRuns(
  publisher: ConfirmPublisher,
  runs: readonly PlannedRun[],
  confirmTimeoutMs: number,
  signer?: MessageSigner,
): Promise<PublishOutcome> {
  const out: PublishOutcome = { confirmed: [], unroutable: [], failed: [], firstError: undefined };
  const settled = new Set<string>();
  const all = runs.map((run) => {
    const body = jobMessageBody(run);
    return publisher
      .publish(EXCHANGE, run.routingKey, body, {
        // Signed at each publish (a republish too), so the runner's age limit counts from here.
        ...(signer ? { headers: signer.sign('job', run.runId, body) } : {}),
        persistent: true,
        mandatory: true,
        // The run id as message id lets a consumer drop a republished duplicate.
        messageId: run.runId,
        contentType: 'application/json',
        timestamp: Math.floor(Date.now() / 1000),
        appId: 'cronq-injector',
      })
      .then(
        (r) => {
          settled.add(run.runId);
          (r.routed ? out.confirmed : out.unroutable).push(run);
        },
        (err: unknown) => {
          settled.add(run.runId);
          out.failed.push(run);
          out.firstError ??= asError(err);
        },
      );
  });
  // Each publish's outcome is caught above, so this only ever times out, never rejects.
  await within(Promise.all(all), confirmTimeoutMs);
  for (const run of runs) {
    if (!settled.has(run.runId)) {
      // Counted as not published; the broker may still confirm it later, and
      // the retry then publishes a duplicate under the same run id.
      settled.add(run.runId);
      out.failed.push(run);
      out.firstError ??= new Error(`no publisher confirm within ${confirmTimeoutMs} ms`);
    }
  }
  return out;
}
