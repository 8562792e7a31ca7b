import { describe, expect, it } from 'vitest'
import { isReason } from './sensitive'

describe('isReason', () => {
  it('needs at least four characters besides spaces', () => {
    expect(isReason('核对')).toBe(false)
    expect(isReason('  核对信  ')).toBe(false)
    expect(isReason('核对身份')).toBe(true)
    expect(isReason(null)).toBe(false)
  })
})
