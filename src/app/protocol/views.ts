/**
 * Plain domain data the server hands to the protocol layer to build replies.
 * They already have the framed JSON shapes of docs/PROTOCOL.md §3–4; legacyReplies.ts re-shapes them
 * for the classic client.
 */
export type OnlineState = 'online' | 'offline';
export type GroupRole = 'creator' | 'normal';

export interface FriendView {
  id: number;
  name: string;
  state: OnlineState;
}

export interface GroupUserView {
  id: number;
  name: string;
  state: OnlineState;
  role: GroupRole;
}

export interface GroupView {
  id: number;
  groupname: string;
  groupdesc: string;
  users: readonly GroupUserView[];
}

interface ChatPushBase {
  /** Server message id. */
  mid: number;
  /** The recipient's inbox sequence (1, 2, 3… per recipient). */
  seq: number;
  /** Sender id and name. */
  id: number;
  name: string;
  msg: string;
  /** "YYYY-MM-DD HH:MM:SS". */
  time: string;
}

export interface OneChatPushView extends ChatPushBase {
  msgid: 6;
  toid: number;
}

export interface GroupChatPushView extends ChatPushBase {
  msgid: 10;
  groupid: number;
}

/** A chat push (s→c 6 or 10); this object is itself the framed push. */
export type ChatPushView = OneChatPushView | GroupChatPushView;
