import { describe, expect, it } from 'vitest'
import { weekStart, weekTable, type Shift } from './week'

function shift(id: string, staff: string, startsAt: string, endsAt: string): Shift {
  return { id, startsAt, endsAt, onDuty: false, staff: { id: staff } }
}

describe('duty week', () => {
  it('starts on Monday in village time, whatever the browser’s zone', () => {
    // Sunday 2026-12-06 20:00 UTC is Monday 04:00 in the village.
    expect(weekStart('2026-12-06T20:00:00Z').format('YYYY-MM-DD')).toBe('2026-12-07')
    expect(weekStart('2026-12-06T10:00:00Z').format('YYYY-MM-DD')).toBe('2026-11-30')
  })

  it('places a night shift on both days it covers', () => {
    const start = weekStart('2026-12-01T00:00:00+08:00')
    const table = weekTable(
      [
        shift('a', 's1', '2026-11-30T08:00:00+08:00', '2026-11-30T18:00:00+08:00'),
        shift('b', 's1', '2026-12-01T20:00:00+08:00', '2026-12-02T08:00:00+08:00'),
      ],
      start,
    )
    const row = table.get('s1')!
    expect(row.map((day) => day.map((s) => s.id))).toEqual([['a'], ['b'], ['b'], [], [], [], []])
  })
})
