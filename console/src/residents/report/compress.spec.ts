import { describe, expect, it } from 'vitest'
import { fitWithin } from './compress'

describe('fitWithin', () => {
  it('shrinks a camera photo to 1600 px on its long side, keeping its shape', () => {
    expect(fitWithin(4032, 3024)).toEqual({ width: 1600, height: 1200 })
    expect(fitWithin(3024, 4032)).toEqual({ width: 1200, height: 1600 })
  })

  it('never enlarges a small one', () => {
    expect(fitWithin(640, 480)).toEqual({ width: 640, height: 480 })
  })
})
