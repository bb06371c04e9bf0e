import { isPermanentDbError, sqlState } from '../../lib/platform/db';

describe('sqlState and isPermanentDbError', () => {
  it("finds the SQLSTATE inside a Prisma raw-query error, past Prisma's own P2010 code", () => {
    const prismaError = Object.assign(new Error('Raw query failed. Code: `22003`.'), {
      code: 'P2010',
      meta: { code: '22003', message: 'out of range' },
    });
    expect(sqlState(prismaError)).toBe('22003');
    expect(isPermanentDbError(prismaError)).toBe(true);
  });
  it('finds it in a driver adapter error and in a plain pg error', () => {
    expect(sqlState({ code: 'P2010', meta: { driverAdapterError: { cause: { originalCode: '23505' } } } })).toBe('23505');
    expect(sqlState(Object.assign(new Error('duplicate'), { code: '23505' }))).toBe('23505');
  });
  it('treats connection and resource errors as worth retrying', () => {
    expect(isPermanentDbError({ code: '08006' })).toBe(false); // connection failure
    expect(isPermanentDbError({ code: '53300' })).toBe(false); // too many connections
    expect(isPermanentDbError({ code: '57P01' })).toBe(false); // admin shutdown
    expect(isPermanentDbError(new Error('ECONNREFUSED'))).toBe(false);
    expect(isPermanentDbError({ code: 'P1001' })).toBe(false); // Prisma: cannot reach the database
  });
});
