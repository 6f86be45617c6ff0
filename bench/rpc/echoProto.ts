/** The benchmark's service, served identically by every implementation. */
export const ECHO_PROTO = `
syntax = "proto3";
package bench;

message EchoRequest { bytes payload = 1; }
message EchoResponse { bytes payload = 1; }

service EchoService {
  rpc Echo(EchoRequest) returns (EchoResponse) {
    option idempotency_level = IDEMPOTENT;
  }
}
`;

export const SERVICE_NAME = 'bench.EchoService';
export const IMPLS = ['native', 'grpc', 'classic', 'plain'] as const;
export type Impl = (typeof IMPLS)[number];

export function isImpl(value: string | undefined): value is Impl {
  return (IMPLS as readonly string[]).includes(value ?? '');
}
