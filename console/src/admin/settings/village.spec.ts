import { describe, expect, it } from 'vitest'
import { villageChanges } from './village'

const BEFORE = { name: '杏花村', address: '南河镇杏花村村委会', contactPhone: null }

describe('villageChanges', () => {
  it('sends only what changed, trimmed', () => {
    expect(villageChanges(BEFORE, { name: ' 杏花村 ', address: '南河镇杏花村村委会', contactPhone: ' 022-23456789 ' })).toEqual({
      contactPhone: '022-23456789',
    })
  })

  it('clears an emptied field with null', () => {
    expect(villageChanges(BEFORE, { name: '杏花村', address: '  ', contactPhone: '' })).toEqual({ address: null })
  })

  it('sends a blank name for the API to refuse beside the field', () => {
    expect(villageChanges(BEFORE, { name: '  ', address: BEFORE.address, contactPhone: null })).toEqual({ name: '' })
  })
})
