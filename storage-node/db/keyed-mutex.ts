/**
 * One-at-a-time sections per key: a container's (or account's) read-modify-write of its info
 * record and rows runs alone, so two concurrent row updates never both start from the same stats.
 * Waiters queue in arrival order; the queue of a key is dropped when it empties, so memory stays
 * bounded by the keys in use right now.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release: () => void = () => undefined;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await section();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }

  /** Keys with a section running or waiting (for tests and shutdown). */
  get size(): number {
    return this.tails.size;
  }
}
