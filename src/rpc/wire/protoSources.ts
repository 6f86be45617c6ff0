/**
 * The two wire headers as .proto text, embedded so that the library needs no file at run time.
 * The native header is encoded by hand on the hot path (rpcMeta.ts); this text is its contract,
 * and the tests check the hand-written codec against protobufjs reading it.
 */

/** Native header: one per frame, in front of the serialized request/response message. */
export const NATIVE_META_PROTO = `
syntax = "proto3";
package mprpc.wire;

enum FrameKind {
  REQUEST = 0;
  RESPONSE = 1;
  GOAWAY = 2;   // provider is draining: send no new calls on this connection
}

enum Status {
  OK = 0;
  UNKNOWN_SERVICE = 1;
  UNKNOWN_METHOD = 2;
  BAD_REQUEST = 3;
  HANDLER_ERROR = 4;
  DEADLINE_EXCEEDED = 5;
  UNAVAILABLE = 6;         // refused before running the handler (draining, overloaded)
  RESOURCE_EXHAUSTED = 7;
}

message RpcMeta {
  FrameKind kind = 1;
  uint32 call_id = 2;      // chosen by the caller, unique among its calls in flight on the connection
  string service = 3;      // request: full service name ("fixbug.UserServiceRpc"); short name accepted
  string method = 4;       // request: method name ("Login")
  uint32 timeout_ms = 5;   // request: budget left when sent; 0 = no deadline
  Status status = 6;       // response
  string error = 7;        // response: human-readable error text when status != OK
}
`;

/** The classic C++ mprpc header (docs/PROTOCOL.md §10), byte for byte. */
export const CLASSIC_HEADER_PROTO = `
syntax = "proto3";
package mprpc;

message RpcHeader {
  bytes service_name = 1;
  bytes method_name = 2;
  uint32 args_size = 3;
}
`;
