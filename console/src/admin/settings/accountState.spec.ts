import { describe, expect, it } from 'vitest'
import { accountStateTag } from './accountState'

describe('accountStateTag', () => {
  it('greys the waiting, greens the bound and reds the rejected', () => {
    expect(accountStateTag('PENDING')).toBe('info')
    expect(accountStateTag('BOUND')).toBe('success')
    expect(accountStateTag('REJECTED')).toBe('danger')
    expect(accountStateTag('SOMETHING_NEW')).toBe('info')
  })
})
