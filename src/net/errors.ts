/** Error codes raised by the library's codecs. */
export type NetErrorCode = 'FRAME_TOO_LARGE' | 'BAD_FRAME';

export class NetError extends Error {
  constructor(
    readonly code: NetErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'NetError';
  }
}
