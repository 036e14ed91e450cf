// Message move tasks (StartMessageMoveTask): move messages out of a dead-letter queue,
// back to the queue each came from or to a named destination, at a bounded rate.
//
// Task states: RUNNING -> COMPLETED (source drained) | CANCELLING -> CANCELLED | FAILED.
// Each message is copied durably into its destination before it is deleted from the
// source, so a crash mid-move duplicates at worst and never loses. Tasks live in memory:
// after a restart, a task that was running is gone (its moved messages stay moved).

import type { Clock, TimerHandle } from '../core/clock.js';
import { BerthError } from '../protocol/errors.js';
import type { EnqueuePayload } from '../queue/records.js';
import type { MoveTask } from './service.js';
import type { PartitionLogger } from './partition.js';

export interface MoveTaskBroker {
  nameFromArn(arn: string): string | undefined;
  hasQueue(name: string): boolean;
  listQueues(): Promise<string[]>;
  listDeadLetterSourceQueues(name: string): Promise<string[]>;
  queueCounts(name: string): Promise<{ visible: number; inflight: number; delayed: number }>;
  takeMessages(name: string, maxMessages: number): Promise<Array<{ payload: EnqueuePayload; receiptHandle: string }>>;
  enqueueMoved(name: string, payloads: EnqueuePayload[], sourceArn: string | undefined): Promise<void>;
  deleteMessages(name: string, receiptHandles: string[]): Promise<Array<BerthError | null>>;
}

interface RunningTask {
  task: MoveTask;
  sourceName: string;
  timer: TimerHandle | undefined;
}

const tickMs = 100;
const defaultMessagesPerSecond = 500;
const tasksPerSourceKept = 10;

export class MoveTaskRunner {
  private readonly tasks: RunningTask[] = [];

  constructor(
    private readonly broker: MoveTaskBroker,
    private readonly clock: Clock,
    private readonly logger: PartitionLogger,
    private readonly newId: () => string,
  ) {}

  async start(sourceArn: string, destinationArn: string | undefined, maxNumberOfMessagesPerSecond: number | undefined): Promise<string> {
    const sourceName = this.broker.nameFromArn(sourceArn);
    if (sourceName === undefined || !this.broker.hasQueue(sourceName)) {
      throw new BerthError('ResourceNotFoundException', `The resource that you specified for the SourceArn parameter doesn't exist: ${sourceArn}`);
    }
    if ((await this.broker.listDeadLetterSourceQueues(sourceName)).length === 0) {
      throw new BerthError('InvalidParameterValue', `Source queue must be configured as a Dead Letter Queue: ${sourceArn}`);
    }
    if (destinationArn !== undefined) {
      const destinationName = this.broker.nameFromArn(destinationArn);
      if (destinationName === undefined || !this.broker.hasQueue(destinationName)) {
        throw new BerthError('ResourceNotFoundException', `The resource that you specified for the DestinationArn parameter doesn't exist: ${destinationArn}`);
      }
    }
    if (this.tasks.some((running) => running.sourceName === sourceName && (running.task.status === 'RUNNING' || running.task.status === 'CANCELLING'))) {
      throw new BerthError('UnsupportedOperation', `There is already a message move task running for ${sourceArn}.`);
    }
    const counts = await this.broker.queueCounts(sourceName);
    const task: MoveTask = {
      taskHandle: Buffer.from(JSON.stringify({ taskId: this.newId(), sourceArn }), 'utf8').toString('base64'),
      status: 'RUNNING',
      sourceArn,
      approximateNumberOfMessagesMoved: 0,
      approximateNumberOfMessagesToMove: counts.visible + counts.inflight + counts.delayed,
      startedTimestampMs: this.clock.nowMs(),
    };
    if (destinationArn !== undefined) task.destinationArn = destinationArn;
    if (maxNumberOfMessagesPerSecond !== undefined) task.maxNumberOfMessagesPerSecond = maxNumberOfMessagesPerSecond;
    const running: RunningTask = { task, sourceName, timer: undefined };
    this.tasks.push(running);
    this.prune(sourceArn);
    this.schedule(running);
    return task.taskHandle;
  }

  list(sourceArn: string, maxResults: number): MoveTask[] {
    const sourceName = this.broker.nameFromArn(sourceArn);
    if (sourceName === undefined || !this.broker.hasQueue(sourceName)) {
      throw new BerthError('ResourceNotFoundException', `The resource that you specified for the SourceArn parameter doesn't exist: ${sourceArn}`);
    }
    return this.tasks
      .filter((running) => running.task.sourceArn === sourceArn)
      .map((running) => ({ ...running.task }))
      .reverse()
      .slice(0, maxResults);
  }

  cancel(taskHandle: string): number {
    const running = this.tasks.find((candidate) => candidate.task.taskHandle === taskHandle);
    if (running === undefined) throw new BerthError('ResourceNotFoundException', 'Task does not exist.');
    if (running.task.status !== 'RUNNING') {
      throw new BerthError('UnsupportedOperation', `Only a RUNNING task can be cancelled; this one is ${running.task.status}.`);
    }
    running.task.status = 'CANCELLING';
    return running.task.approximateNumberOfMessagesMoved;
  }

  stopAll(): void {
    for (const running of this.tasks) running.timer?.cancel();
  }

  private prune(sourceArn: string): void {
    const ofSource = this.tasks.filter((running) => running.task.sourceArn === sourceArn);
    for (const old of ofSource.slice(0, Math.max(0, ofSource.length - tasksPerSourceKept))) {
      if (old.task.status === 'RUNNING') continue;
      this.tasks.splice(this.tasks.indexOf(old), 1);
    }
  }

  private schedule(running: RunningTask): void {
    running.timer = this.clock.setTimer(tickMs, () => {
      this.step(running).then(
        (again) => {
          if (again) this.schedule(running);
        },
        (error: unknown) => {
          running.task.status = 'FAILED';
          running.task.failureReason = error instanceof Error ? error.message : String(error);
          this.logger.warn({ err: error, task: running.task.taskHandle }, 'message move task failed');
        },
      );
    });
  }

  /** Moves one tick's worth of messages. Returns whether to continue. */
  private async step(running: RunningTask): Promise<boolean> {
    const task = running.task;
    if (task.status === 'CANCELLING') {
      task.status = 'CANCELLED';
      return false;
    }
    const perSecond = task.maxNumberOfMessagesPerSecond ?? defaultMessagesPerSecond;
    const budget = Math.max(1, Math.floor((perSecond * tickMs) / 1000));
    let moved = 0;
    while (moved < budget) {
      const taken = await this.broker.takeMessages(running.sourceName, Math.min(10, budget - moved));
      if (taken.length === 0) break;
      for (const { payload, receiptHandle } of taken) {
        const destinationArn = task.destinationArn ?? payload.deadLetterQueueSourceArn;
        const destinationName = destinationArn === undefined ? undefined : this.broker.nameFromArn(destinationArn);
        if (destinationName === undefined || !this.broker.hasQueue(destinationName)) {
          throw new Error(`the destination queue of message ${payload.messageId} (${destinationArn ?? 'unknown source'}) does not exist`);
        }
        await this.broker.enqueueMoved(destinationName, [payload], undefined);
        await this.broker.deleteMessages(running.sourceName, [receiptHandle]);
        task.approximateNumberOfMessagesMoved++;
        moved++;
      }
    }
    if (moved === 0) {
      const counts = await this.broker.queueCounts(running.sourceName);
      if (counts.visible + counts.delayed === 0) {
        task.status = 'COMPLETED';
        return false;
      }
    }
    return true;
  }
}
