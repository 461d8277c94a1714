/**
 * gRPC request frames for the load generators: the 5-byte gRPC message prefix (compressed flag
 * 0, big-endian length) followed by the protobuf encoding of a `RateLimitRequest`, exactly what
 * Envoy puts in the HTTP/2 DATA frame of a ShouldRateLimit call. h2load sends such a file as the
 * request body (`-d`), unchanged, on every request.
 *
 * Encoding uses the service's own proto files and protobufjs (through @grpc/proto-loader), so a
 * frame is byte-for-byte what a grpc-js client would send.
 */
import type * as grpc from '@grpc/grpc-js';
import { toWireRequest, type RlsRequestInput } from '../../src/client/rls-client.js';
import { loadClientPackage, RLS_SERVICE, serviceDefinition } from '../../src/server/grpc/protos.js';

/** The HTTP/2 `:path` of the RLS method. */
export const RLS_PATH = '/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit';

/** Request headers a gRPC client sends (h2load adds `:method POST` itself when given `-d`). */
export const GRPC_REQUEST_HEADERS: readonly (readonly [string, string])[] = [
  ['content-type', 'application/grpc'],
  ['te', 'trailers'],
];

type AnyMethod = grpc.MethodDefinition<object, unknown>;

let method: AnyMethod | undefined;
function rlsMethod(): AnyMethod {
  method ??= serviceDefinition(loadClientPackage(), RLS_SERVICE)['ShouldRateLimit'] as unknown as AnyMethod;
  return method;
}

/** Protobuf bytes of a RateLimitRequest. */
export function encodeRequest(req: RlsRequestInput): Buffer {
  const wire = toWireRequest(req) as { hitsAddend?: number };
  // Envoy leaves the proto3 default out; an explicit 0 would add two bytes Envoy never sends.
  if (req.hitsAddend === undefined) delete wire.hitsAddend;
  return rlsMethod().requestSerialize(wire);
}

/** A length-prefixed gRPC message (uncompressed). */
export function grpcFrame(message: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length);
  out[0] = 0;
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** The gRPC frame of a RateLimitRequest. */
export function requestFrame(req: RlsRequestInput): Buffer {
  return grpcFrame(encodeRequest(req));
}

/** Decodes the response message of one unary call from its DATA bytes (one length-prefixed message). */
export function decodeResponseFrame(body: Buffer): unknown {
  if (body.length < 5) throw new Error(`response body of ${body.length} bytes is not a gRPC message`);
  if (body[0] !== 0) throw new Error('compressed gRPC responses are not expected');
  const len = body.readUInt32BE(1);
  if (body.length !== 5 + len) throw new Error(`gRPC message length ${len} does not match body of ${body.length} bytes`);
  return rlsMethod().responseDeserialize(body.subarray(5));
}
