import type { ChatPushView } from '../protocol/views.js';
import type { ChatJob } from './GroupCommitter.js';

/** The push (msgid 6 or 10) a recipient gets for a committed chat message. */
export function pushOf(job: ChatJob, senderName: string, mid: number, seq: number): ChatPushView {
  const common = { mid, seq, id: job.sender, name: senderName, msg: job.body, time: job.time };
  return job.kind === 'one'
    ? { msgid: 6, ...common, toid: job.target }
    : { msgid: 10, ...common, groupid: job.target };
}
