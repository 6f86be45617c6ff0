import { readFileSync } from 'node:fs';

/**
 * The text of chat.proto, the single source of the protobuf schema. It sits next to this module
 * in src/ and in dist/ (the build copies .proto files), so it is found the same way from both.
 */
export const CHAT_PROTO_SOURCE: string = readFileSync(new URL('./chat.proto', import.meta.url), 'utf8');
