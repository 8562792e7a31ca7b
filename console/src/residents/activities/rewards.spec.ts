import { describe, expect, it } from 'vitest'
import { mayRedeem, type Reward } from './rewards'

const reward: Reward = { id: 'r', name: '洗衣液', description: null, pointsCost: 50, stock: 1 }

describe('mayRedeem', () => {
  it('needs stock and enough points', () => {
    expect(mayRedeem(reward, 50)).toBe(true)
    expect(mayRedeem(reward, 49)).toBe(false)
    expect(mayRedeem({ ...reward, stock: 0 }, 500)).toBe(false)
  })
})
