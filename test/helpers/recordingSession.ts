import { ChatSession, type SessionTransport } from '../../src/app/service/ChatSession.js';
import { RateLimiter } from '../../src/app/service/RateLimiter.js';

/** A ChatSession on a transport that sends nowhere and records whether the server closed it. */
export function recordingSession(): ChatSession & { closedByServer: () => boolean } {
  let closed = false;
  const transport: SessionTransport = {
    kind: 'json',
    peer: 'test',
    send: () => {},
    close: () => {
      closed = true;
    },
    pauseInput: () => {},
    resumeInput: () => {},
  };
  return Object.assign(new ChatSession(transport, () => undefined, new RateLimiter(100, 100)), {
    closedByServer: () => closed,
  });
}
