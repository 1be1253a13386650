import { status } from '@grpc/grpc-js';
import { FailedPreconditionError, Hm3Error, InvalidArgumentError, NotFoundError } from '@hm3/errors';
import { describe, expect, it } from 'vitest';
import { statusName, toRpcStatus } from './errors-to-status.js';

describe('toRpcStatus', () => {
  it('maps an Hm3Error status to the gRPC code and keeps its message', () => {
    expect(toRpcStatus(new InvalidArgumentError('bad field x'), 'r1')).toEqual({
      code: status.INVALID_ARGUMENT,
      details: 'bad field x',
    });
    expect(toRpcStatus(new NotFoundError('no model m'), 'r1').code).toBe(status.NOT_FOUND);
    expect(toRpcStatus(new FailedPreconditionError('not ready'), 'r1').code).toBe(status.FAILED_PRECONDITION);
    expect(toRpcStatus(new Hm3Error('busy', { status: 'RESOURCE_EXHAUSTED' }), 'r1').code).toBe(
      status.RESOURCE_EXHAUSTED,
    );
  });

  it('hides anything else behind INTERNAL with the request id', () => {
    expect(toRpcStatus(new TypeError('secret detail'), 'req-9')).toEqual({
      code: status.INTERNAL,
      details: 'internal error (request req-9)',
    });
    expect(toRpcStatus('a string', 'req-9').code).toBe(status.INTERNAL);
  });

  it('names codes for logs and metric labels', () => {
    expect(statusName(status.DEADLINE_EXCEEDED)).toBe('DEADLINE_EXCEEDED');
    expect(statusName(99 as status)).toBe('CODE_99');
  });
});
