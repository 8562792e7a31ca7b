import { describe, expect, it } from 'vitest'
import { vitalRows } from './vitals'

describe('vital rows', () => {
  it('lists each vital that has a value, blood pressure as one reading', () => {
    const rows = vitalRows({ measuredAt: '2026-12-06T08:00:00Z', heartRate: 134, spo2: 95, systolic: 150, diastolic: 92 })
    expect(rows).toEqual([
      { label: 'heartRate', value: '134', unit: 'perMinute' },
      { label: 'spo2', value: '95', unit: 'percent' },
      { label: 'bloodPressure', value: '150/92', unit: 'mmHg' },
    ])
  })

  it('leaves out what the wristband has not measured, and half a blood pressure', () => {
    const rows = vitalRows({ measuredAt: '2026-12-06T08:00:00Z', heartRate: null, spo2: 97, systolic: 150, diastolic: null })
    expect(rows.map((row) => row.label)).toEqual(['spo2'])
  })
})
