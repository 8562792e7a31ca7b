import { describe, expect, it } from 'vitest'
import { emptyHealthForm, healthRecordInput } from './healthForm'

describe('health record form', () => {
  it('sends contacts filled in, drops blank rows, and clears what is left empty', () => {
    const form = {
      ...emptyHealthForm(),
      careLevel: 'ASSISTED',
      conditions: [' 高血压 ', ''],
      contacts: [
        { name: '张艳', relation: '女儿', phone: '13516371247' },
        { name: '', relation: '', phone: '' },
      ],
    }
    expect(healthRecordInput('UmVz', form)).toEqual({
      resident: 'UmVz',
      careLevel: 'ASSISTED',
      conditions: ['高血压'],
      emergencyContacts: [{ name: '张艳', relation: '女儿', phone: '13516371247' }],
      wanderingRisk: false,
      heartRateRange: null,
      safeZone: null,
      note: null,
    })
  })

  it('sends a range and a safe zone only when whole', () => {
    const form = { ...emptyHealthForm(), heartRateMin: 55, heartRateMax: 100, latitude: 39.9, longitude: null, radiusM: 300 }
    const input = healthRecordInput('UmVz', form)
    expect(input.heartRateRange).toEqual({ min: 55, max: 100 })
    expect(input.safeZone).toBeNull()
  })
})
