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
}

export interface AppendResult {
  mid: number;
  duplicate: boolean;
  /**
   * The (sender, cmid) was already used for a different message (kind, target or body): nothing
   * is stored or delivered, `mid` is 0 and `duplicate` true.
   */
  cmidReused?: boolean;
  /** Empty when duplicate. */
  deliveries: { userId: number; seq: number }[];
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
