/**
 * Inbox partitions of the message service: a conversation (a one-to-one recipient, or a group)
 * belongs to one of PARTITION_COUNT partitions, and one message-service node at a time writes a
 * partition (docs/DISTRIBUTED.md, "Scaling the message service"). Fixed: changing it would move
 * every conversation at once, so it is part of the schema (migration 4 makes one row each).
 */
export const PARTITION_COUNT = 64;

/** The partition of the conversation a message belongs to: its recipient user or its group. */
export function partitionOf(target: number): number {
  // Ids are handed out in sequence, so the remainder spreads them evenly.
  return ((target % PARTITION_COUNT) + PARTITION_COUNT) % PARTITION_COUNT;
}

/** The rendezvous key of a partition: what the gateway routes a submit by (CallOptions.affinity). */
export function partitionKey(part: number): string {
  return `inbox-partition-${part}`;
}
