import { describe, expect, it } from 'vitest'
import { orderStep } from './orderSteps'

describe('orderStep', () => {
  it('follows 下单→派单→接单→完成; a declined order waits to be dispatched again', () => {
    expect(['ORDERED', 'DISPATCHED', 'ACCEPTED', 'COMPLETED', 'RATED', 'DECLINED'].map(orderStep)).toEqual([0, 1, 2, 3, 3, 1])
  })
})
