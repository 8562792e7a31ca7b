import { describe, expect, it } from 'vitest'
import { filled } from './formInput'

describe('filled', () => {
  it('leaves out blank fields and trims the others', () => {
    expect(filled({ title: '  路灯 ', note: '   ', grid: '', grade: null, count: 0, on: false })).toEqual({
      title: '路灯',
      count: 0,
      on: false,
    })
  })

  it('keeps lists as they are', () => {
    expect(filled({ requests: [] })).toEqual({ requests: [] })
  })
})
