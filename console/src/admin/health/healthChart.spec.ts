import { describe, expect, it } from 'vitest'
import { rangeVariables, readingsChart, type ReadingBucket } from './healthChart'

const names = { heartRate: '心率', spo2: '血氧', systolic: '收缩压', diastolic: '舒张压' }

function bucket(startsAt: string, heartRateAvg: number | null, systolicMax: number | null): ReadingBucket {
  return {
    startsAt,
    readings: 1,
    heartRateAvg,
    heartRateMin: null,
    heartRateMax: null,
    spo2Min: 97,
    systolicMax,
    diastolicMax: null,
  }
}

describe('readings chart', () => {
  it('draws one line per vital over time, with gaps where a vital was not measured', () => {
    const option = readingsChart(
      [bucket('2026-12-05T00:00:00+08:00', 70.4, null), bucket('2026-12-05T01:00:00+08:00', 71.6, 130)],
      names,
    )
    expect(option.series.map((series) => series.name)).toEqual(['心率', '血氧', '收缩压', '舒张压'])
    expect(option.series[0].data).toEqual([
      ['2026-12-05T00:00:00+08:00', 70],
      ['2026-12-05T01:00:00+08:00', 72],
    ])
    expect(option.series[2].data[0][1]).toBeNull()
  })

  it('asks a week as hourly buckets ending now', () => {
    const now = new Date('2026-12-06T06:00:00Z')
    expect(rangeVariables('WEEK', now)).toEqual({
      from: '2026-11-29T06:00:00.000Z',
      to: '2026-12-06T06:00:00.000Z',
      bucket: 'HOUR',
    })
    expect(rangeVariables('MONTH', now).bucket).toBe('DAY')
  })
})
