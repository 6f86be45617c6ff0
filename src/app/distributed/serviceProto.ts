/** The .proto of the chat services (chat_services.proto beside this module) and their names. */
import { readFileSync } from 'node:fs';
import type protobuf from 'protobufjs';
import { parseProto } from '../../rpc/index.js';

export const CHAT_SERVICES_PROTO_SOURCE: string = readFileSync(
  new URL('./chat_services.proto', import.meta.url),
  'utf8',
);

/** `--services` names → full .proto service names. */
export const SERVICE_NAMES = {
  user: 'chat.svc.UserService',
  friend: 'chat.svc.FriendService',
  group: 'chat.svc.GroupService',
  message: 'chat.svc.MessageService',
} as const;

export type ServiceKind = keyof typeof SERVICE_NAMES;
export const SERVICE_KINDS: readonly ServiceKind[] = ['user', 'friend', 'group', 'message'];

let root: protobuf.Root | null = null;

export function chatServiceDefinition(kind: ServiceKind): protobuf.Service {
  root ??= parseProto(CHAT_SERVICES_PROTO_SOURCE);
  return root.lookupService(SERVICE_NAMES[kind]);
}
