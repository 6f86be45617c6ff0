/** Plain domain types shared by the models and the business layer. No SQL leaks past these. */

export type PresenceState = 'online' | 'offline';

export interface UserRecord {
  id: number;
  name: string;
  passwordHash: string;
  state: PresenceState;
}

export interface UserSummary {
  id: number;
  name: string;
  state: PresenceState;
}

export interface GroupMemberSummary extends UserSummary {
  role: 'creator' | 'normal';
}

export interface GroupDetail {
  id: number;
  groupname: string;
  groupdesc: string;
  users: GroupMemberSummary[];
}

export type MessageKind = 'one' | 'group';

export interface NewMessage {
  sender: number;
  /** Client message id; a repeat of (sender, cmid) is stored once. */
  cmid: string | null;
  kind: MessageKind;
  /** toid for 'one', groupid for 'group'. */
  target: number;
  body: string;
  /** 'YYYY-MM-DD HH:MM:SS' (stored verbatim, at most 64 characters). */
  time: string;
  /** User ids that get an inbox entry, already resolved by the caller, sender excluded. */
  recipients: number[];
  /**
   * Set on the fan-out of a group message stored already (partition-owner mode): append the inbox
   * entries of `recipients` (one partition's members) for that mid and delete its `group_fanout`
   * row, or nothing when the row is gone (fanned out before).
   */
  fanout?: FanoutRef;
}

/** One pending fan-out: a group message's inbox entries for the members of one partition. */
export interface FanoutRef {
  mid: number;
  /** The members' inbox partition. */
  part: number;
}

/** A group message's fan-out to one partition, as the driver sends it (FanoutService). */
export interface FanoutJob extends FanoutRef, FanoutTask {
  sender: number;
  senderName: string;
  /** The group. */
  target: number;
  body: string;
  time: string;
}

/** A fan-out found pending in the store (MessageModel.pendingFanouts). */
export interface PendingFanout extends FanoutJob {
  /** The group's partition: its owner drove the fan-out first. */
  sourcePart: number;
  /** When the message was stored (ms since the epoch, the storing node's clock). */
  createdAt: number;
}

/** A `group_fanout` row a group message left to its members' partition owner (with its members). */
export interface FanoutTask {
  part: number;
  recipients: number[];
}

export interface AppendResult {
  mid: number;
  duplicate: boolean;
  /**
   * The (sender, cmid) was already used for a different message (kind, target or body): nothing
   * is stored or delivered, `mid` is 0 and `duplicate` true.
   */
  cmidReused?: boolean;
  /** Empty when duplicate, and for a group message whose inboxes are fanned out (`fanout`). */
  deliveries: { userId: number; seq: number }[];
  /** A new group message in partition-owner mode: the fan-outs it stored, one per member partition. */
  fanout?: FanoutTask[];
}

export interface InboxEntry {
  seq: number;
  mid: number;
  sender: number;
  senderName: string;
  kind: MessageKind;
  target: number;
  body: string;
  time: string;
}
