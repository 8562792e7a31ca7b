import { describe, expect, it } from 'vitest'
import { createHouseholdInput, emptyHouseholdForm, updateHouseholdInput } from './householdForm'

describe('household form', () => {
  it('creates a flat of a building without an address or grid', () => {
    const form = { ...emptyHouseholdForm(), building: 'QnVp', unitNo: 2, roomNo: ' 301 ', address: 'x', grid: 'g' }
    expect(createHouseholdInput('xinghua', form)).toEqual({
      village: 'xinghua',
      building: 'QnVp',
      unitNo: 2,
      roomNo: '301',
    })
  })

  it('creates a household outside the buildings at an address in a grid', () => {
    const form = { ...emptyHouseholdForm(), place: 'address' as const, address: ' 东头12号 ', grid: 'R3' }
    expect(createHouseholdInput('xinghua', form)).toEqual({ village: 'xinghua', address: '东头12号', grid: 'R3' })
  })

  it('edits only the fields of its kind of place', () => {
    const form = { ...emptyHouseholdForm(), place: 'address' as const, address: '西头3号' }
    expect(updateHouseholdInput('SG8', form)).toEqual({ id: 'SG8', address: '西头3号' })
  })
})
