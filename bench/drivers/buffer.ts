// Turns a push-style subscription (AMQP consume, BullMQ worker, JetStream consume) into
// the pull-style receive() of the Consumer interface: deliveries are queued here as the
// client library hands them over and taken in batches.

export class DeliveryBuffer<T> {
  private readonly items: T[] = [];
  private waiter: (() => void) | undefined;

  push(item: T): void {
    this.items.push(item);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  get size(): number {
    return this.items.length;
  }

  /** Up to `max` items; waits up to `waitMs` for the first one. */
  async take(max: number, waitMs: number): Promise<T[]> {
    if (this.items.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          this.waiter = undefined;
          resolve();
        }, waitMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.items.splice(0, max);
  }

  /** Wakes a pending take() (used on close). */
  wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
